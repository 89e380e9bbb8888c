"""LADDER's LLM-written variants: prompts, temperature cycling and every filter, with a scripted policy."""

from __future__ import annotations

import random

import pytest

from rungs.errors import UserError
from rungs.policies.base import Policy, SamplingParams
from rungs.tasks.base import Task
from rungs.types import Completion, Problem, Verdict
from rungs.variants.llm import PERSONAS, LLMVariantConfig, LLMVariantMaker, parse_problem_lines


class SumTask(Task):
    """Toy task: the problem is 'a+b+...'; difficulty = number of terms; must be digits and '+'."""

    name = "sum"

    def prompt(self, problem, style="instruct"):
        return problem.text

    def verify_answer(self, problem, answer):
        return Verdict(1.0 if answer == str(sum(map(int, problem.text.split("+")))) else 0.0, "correct")

    def generate(self, n, difficulty, seed=0):
        return []

    def parse_problem(self, problem):
        parts = problem.text.split("+")
        if not all(p.strip().isdigit() for p in parts):
            raise UserError(f"not a sum: {problem.text!r}")

    def difficulty(self, problem):
        return float(len(problem.text.split("+")))

    def problem_key(self, problem):
        return tuple(sorted(int(p) for p in problem.text.split("+")))


class ScriptedPolicy(Policy):
    name = "scripted"
    prompt_style = "instruct"

    def __init__(self, replies):
        self.replies = list(replies)
        self.calls: list[tuple[str, SamplingParams]] = []

    def generate(self, prompts, n=1, sampling=None):
        self.calls.append((prompts[0], sampling))
        return [[Completion(self.replies[(len(self.calls) - 1) % len(self.replies)])]]


def test_filters_ill_posed_harder_and_duplicate_variants():
    reply = (
        "<problem>1+2</problem>\n<problem>2+1</problem>\n"  # duplicate of each other (same multiset)
        "<problem>1+2+3+4+5</problem>\n"  # harder than the 3-term parent
        "<problem>import os</problem>\n"  # not a problem of the task
        "<problem>7</problem>\n<problem>3+3+1</problem>"  # no harder; ok
    )
    policy = ScriptedPolicy([reply])
    maker = LLMVariantMaker(policy, SumTask(), LLMVariantConfig(requests_per_call=1))
    variants = maker(Problem("p", "3+4+5"), n=10, rng=random.Random(0))
    assert [v.problem.text for v in variants] == ["1+2", "7", "3+3+1"]
    assert all(v.parent_id == "p" and v.difficulty <= 3 for v in variants)
    assert maker.stats["duplicate"] == 1 and maker.stats["too_hard"] == 1 and maker.stats["ill_posed"] == 1


def test_parent_itself_is_never_a_variant_and_solver_check_applies():
    policy = ScriptedPolicy(["<problem>5+4+3</problem><problem>1+1</problem><problem>2+2</problem>"])
    maker = LLMVariantMaker(policy, SumTask(), LLMVariantConfig(requests_per_call=1),
                            solvable=lambda p: p.text != "2+2")
    variants = maker(Problem("p", "3+4+5"), n=10, rng=random.Random(0))
    assert [v.problem.text for v in variants] == ["1+1"]
    assert maker.stats["unsolvable"] == 1


def test_prompts_carry_persona_transformations_and_cycle_temperature():
    policy = ScriptedPolicy(["nothing useful"])
    maker = LLMVariantMaker(policy, SumTask(), LLMVariantConfig(requests_per_call=6))
    maker(Problem("p", "3+4+5"), n=10, rng=random.Random(1))
    temps = [s.temperature for _, s in policy.calls]
    assert temps == [0.8, 1.0, 1.2, 1.4, 0.8, 1.0]
    prompt = policy.calls[0][0]
    assert "3+4+5" in prompt and any(p in prompt for p in PERSONAS)
    n_transforms = sum(1 for line in prompt.splitlines() if line.startswith("- "))
    assert 3 <= n_transforms <= 5


def test_easier_fraction_is_respected_over_many_requests():
    policy = ScriptedPolicy(["x"])
    maker = LLMVariantMaker(policy, SumTask(), LLMVariantConfig(requests_per_call=200))
    maker(Problem("p", "1+2"), n=1000, rng=random.Random(3))
    easier = sum("easier than this one" in prompt for prompt, _ in policy.calls)
    assert 0.6 < easier / len(policy.calls) < 0.8


def test_compact_policies_are_refused():
    policy = ScriptedPolicy([""])
    policy.prompt_style = "compact"
    with pytest.raises(UserError, match="symbolic variants"):
        LLMVariantMaker(policy, SumTask())


def test_untagged_output_falls_back_to_lines():
    assert parse_problem_lines("1. 1+2\n- 3+4\n\n") == ["1+2", "3+4"]
