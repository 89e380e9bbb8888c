"""bench/countdown_calculator.py: the calculator writes each step's true value where the model
wrote `=`, ends a chain at a step it cannot value, and leaves the model's choices (and its stop)
alone; a chain so completed is what the countdown verifier accepts."""

from __future__ import annotations

import pytest

from rungs.types import Completion


@pytest.fixture(scope="module")
def calc(load_bench):
    return load_bench("countdown_calculator")


class _Tokenizer:
    def encode(self, text: str) -> list[int]:
        return [0x10FFFF] if text == "</answer>" else [ord(c) for c in text]  # a marker is one token


class ScriptedChains:
    """Writes the next step of a fixed chain (values left to the calculator): `script` steps, then stops."""

    prompt_style = "compact"
    tokenizer = _Tokenizer()

    def __init__(self, script: list[str]) -> None:
        self.script = script
        self.calls: list[str] = []

    def encode_prompts(self, prompts):
        return [self.tokenizer.encode(p) for p in prompts]

    def logprobs(self, prompt_ids, completion_ids, with_entropy=False):
        """After a value: `;` while the script has steps left, else `</answer>` (log-probs 0 and -100)."""
        import torch

        from rungs.policies.base import LogProbs

        rows = []
        for prompt, (token,) in zip(prompt_ids, completion_ids):
            more = "".join(map(chr, prompt)).count("=") < len(self.script)
            rows.append([0.0 if (token == ord(";")) == more else -100.0])
        return LogProbs(torch.tensor(rows), torch.ones(len(rows), 1, dtype=torch.bool))

    def generate(self, prompts, n=1, sampling=None):
        out = []
        for prompt in prompts:
            self.calls.append(prompt)
            done = prompt.count("=")
            if done < len(self.script):
                piece = self.script[done]
                out.append([Completion(piece, [ord(c) for c in piece] + [ord("=")], None, "stop")])
            else:
                out.append([Completion("", [0], None, "stop")])  # end of sequence (not reached: the separator ends it)
        return out


def test_calculate_values_the_last_step_only_when_a_positive_integer(calc):
    assert calc.calculate("46-31") == 15
    assert calc.calculate("46-31=15;21*15") == 315
    assert calc.calculate("7/2") is None and calc.calculate("3-5") is None and calc.calculate("4/0") is None
    assert calc.calculate("so 3+") is None and calc.calculate("1.5+2") is None
    assert calc.calculate("<answer>40+30") == 70  # the first step, right after the answer tag


def test_the_calculator_writes_true_values_and_the_verifier_accepts_the_chain(calc):
    from rungs.tasks import get_task
    from rungs.types import Problem

    task = get_task("countdown")
    problem = Problem(id="p", text="numbers: 46 31 21 3; target: 318", answer=None)
    policy = ScriptedChains(["46-31", "21*15", "315+3"])
    prompt = task.prompt(problem, "compact")
    (chain,), ends = calc.calculator_sample(policy, [prompt], 1.0, seed=0)
    assert chain == "46-31=15;21*15=315;315+3=318</answer>"
    assert ends == {"stopped": 1, "bad_step": 0, "too_long": 0}
    assert policy.calls[1] == prompt + "46-31=15;"  # the model goes on from the true value
    assert len(policy.calls) == 3  # it chose </answer> after the third value
    assert task.verify(problem, "<answer>" + chain).correct  # the model writes the opening tag itself


def test_a_step_the_calculator_cannot_value_ends_the_chain(calc):
    policy = ScriptedChains(["7/2", "3+4"])
    (chain,), ends = calc.calculator_sample(policy, ["numbers: 7 2 4; target: 9"], 1.0, seed=0)
    assert chain == "7/2=" and ends["bad_step"] == 1 and len(policy.calls) == 1
