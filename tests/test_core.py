"""Core records, the registry and answer extraction."""

from __future__ import annotations

import pytest

from rungs.errors import UserError
from rungs.registry import Registry, split_spec
from rungs.types import Completion, Problem, Status, Verdict
from rungs.verify.extract import extract_answer, last_boxed


def test_verdict_reward_must_be_in_unit_interval():
    with pytest.raises(ValueError):
        Verdict(1.5, Status.CORRECT)
    assert Verdict.fail(Status.TIMEOUT, "slow").reward == 0.0


def test_records_round_trip_through_dicts():
    p = Problem("a", "integrate(x, x)", "x**2/2", {"difficulty": 1})
    assert Problem.from_dict(p.to_dict()) == p
    v = Verdict(1.0, Status.CORRECT, "ok", "x**2/2")
    assert Verdict.from_dict(v.to_dict()) == v
    c = Completion("<answer>x</answer>", [1, 2], [-0.5, -0.25], "length")
    assert Completion.from_dict(c.to_dict()) == c
    assert c.truncated and c.mean_logprob() == pytest.approx(-0.375)


def test_registry_did_you_mean_and_lazy_entries():
    reg: Registry[object] = Registry("task")
    reg.register("integration", "fractions:Fraction")
    reg.register("countdown", "fractions:Fraction.from_float")
    assert reg.get("integration").__name__ == "Fraction"
    assert reg.get("countdown")(0.5) == 0.5
    with pytest.raises(UserError, match=r"unknown task 'integrtion'.*did you mean 'integration'"):
        reg.get("integrtion")
    assert split_spec("hf:Qwen/Qwen2.5-0.5B") == ("hf", "Qwen/Qwen2.5-0.5B")
    assert split_spec("tiny") == ("tiny", None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so <answer>x**2</answer>", "x**2"),
        ("<answer>a</answer> then <answer> b </answer>", "b"),
        ("the result is \\boxed{\\frac{1}{2}} done", "\\frac{1}{2}"),
        ("\\boxed{a} and \\boxed{{b}}", "{b}"),
        ("<answer>\\boxed{x^2}</answer>", "x^2"),
        ("<answer>$x^2$</answer>", "x^2"),
        ("no answer here", None),
        ("<answer></answer>", None),
        ("\\boxed{unbalanced", None),
    ],
)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_extraction_is_linear_on_megabyte_input():
    text = "\\boxed{" * 200_000 + "x" + "}" * 10
    assert last_boxed(text) == "x"  # the innermost (last) box closes first
    assert extract_answer("<answer>" * 100_000) is None
