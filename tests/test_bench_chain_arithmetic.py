"""bench/chain_arithmetic.py: each step `a op b = c` of a worked chain checked on its own."""

from __future__ import annotations

import json


def test_each_step_is_checked_by_operation_and_result_size(load_bench):
    chain = load_bench("chain_arithmetic")
    counts = chain.step_checks(["<answer>3+7=10;10*5=51</answer>", "46-31=15;21*15=315;315+33=638", "8/0=1;9/3=3"])
    assert counts == {"+ small": [1, 1], "* small": [0, 1], "- small": [1, 1], "* large": [1, 1],
                      "+ large": [0, 1], "/ large": [0, 1], "/ small": [1, 1]}


def test_the_bench_writes_its_table_json_and_plot(load_bench, tmp_path, capsys):
    chain = load_bench("chain_arithmetic")
    out = tmp_path / "not-yet" / "arith.json"  # a folder that does not exist yet is made first
    assert chain.main(["--policy", "tiny:countdown", "--n", "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["steps"] == sum(v[1] for v in result["counts"].values())
    captured = capsys.readouterr()
    assert out.with_suffix(".png").exists() and "chain arithmetic" in captured.out
    # tiny:countdown writes expressions, not chains: that is said, not scored as 0.000 right
    assert result["steps"] == 0 and result["share_right"] is None and "no worked-chain step" in captured.err
