"""bench/bench_cli.py: what every bench script shares at its edges."""

from __future__ import annotations

import argparse

import pytest


@pytest.fixture(scope="module")
def bench_cli(load_bench):
    return load_bench("bench_cli")


def test_a_user_error_ends_in_one_line_and_status_2(bench_cli, capsys):
    from rungs.errors import UserError

    def main():
        raise UserError("unknown task 'foo'")

    with pytest.raises(SystemExit) as raised:
        bench_cli.run(main, "rewards")
    assert raised.value.code == 2
    assert capsys.readouterr().err == "rewards: error: unknown task 'foo'\n"


def test_a_main_that_returns_its_result_exits_0(bench_cli):
    with pytest.raises(SystemExit) as raised:
        bench_cli.run(lambda: {"arms": {}}, "arc")
    assert raised.value.code == 0


def test_counts_and_names(bench_cli):
    assert bench_cli.positive("3") == 3
    for bad in ("0", "-1", "x"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected an integer >= 1"):
            bench_cli.positive(bad)
    assert bench_cli.int_at_least(1, zero_means="all")("0") == 0
    assert bench_cli.names_list(("a", "b"))("b,a") == ["b", "a"]
    with pytest.raises(argparse.ArgumentTypeError, match=r"unknown: c"):
        bench_cli.names_list(("a", "b"))("a,c")


def test_a_result_files_folder_is_made_before_the_measurement(bench_cli, tmp_path):
    path = bench_cli.writable_parent(tmp_path / "new" / "deeper" / "v.json", "--json")
    assert path.parent.is_dir() and not path.exists()
    with pytest.raises(SystemExit, match="is a folder"):
        bench_cli.writable_parent(tmp_path / "new", "--json")
