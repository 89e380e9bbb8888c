"""The Task interface: everything rungs needs to know about one kind of checkable problem.

A task owns its prompt format, answer extraction, verification, answer equivalence (for voting),
a random problem generator with a difficulty knob, and (optionally) symbolic easier variants.
`verify` is pure and may be slow or even hang on hostile input: callers that score model output
run it through `rungs.verify.pool.VerifierPool`, never inline in a training loop.
"""

from __future__ import annotations

import abc
import copy
import random
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from rungs.errors import UserError
from rungs.types import Problem, Status, Verdict

# How a policy wants its prompt: "instruct" is a natural-language instruction for chat LLMs,
# "compact" is the bare problem text the embedded character-level model was trained on.
PROMPT_STYLES = ("instruct", "compact")


@dataclass(frozen=True)
class Variant:
    """An easier (or equivalent) problem made from a parent, with the task's difficulty estimate."""

    problem: Problem
    difficulty: float
    transform: str  # which mutation made it ("drop_term", "llm:persona=euler", ...)
    parent_id: str
    depth: int = 1
    meta: dict = field(default_factory=dict, compare=False, hash=False)


def reasoning_tags(delimiters: Sequence[str] | str | None) -> tuple[str, ...] | None:
    """TRL's `reasoning_delimiters` as every entry point keeps them (`Task.with_reasoning`, the TRL
    and veRL rewards): a tuple of the tags, or None for none. Empty and whitespace-only tags are
    dropped, as the command line's comma lists drop them: such a tag never ends the reasoning, so
    it would score every completion 0. A single string is one tag. UserError (one line) for
    anything that is not a string or a list of strings."""
    if delimiters is None:
        return None
    items = (delimiters,) if isinstance(delimiters, str) else delimiters
    if isinstance(items, (bytes, Mapping)) or not isinstance(items, Iterable):
        items = None
    else:
        items = tuple(items)
    if items is None or not all(isinstance(tag, str) for tag in items):
        raise UserError(f"reasoning_delimiters {delimiters!r}: expected a list of strings such as ['</think>']")
    return tuple(tag for tag in items if tag.strip()) or None


class Task(abc.ABC):
    name: str = ""
    description: str = ""
    # Whether verify needs Problem.answer (math does; integration and countdown check themselves).
    needs_answer: bool = False
    # Characters the embedded tiny model must be able to read and write for this task.
    alphabet: str = ""
    # TRL's `reasoning_accuracy_reward` semantics, off by default (None): when set (TRL's own
    # default is ("</think>",)), only the text after the end of the reasoning can hold the answer,
    # and a completion whose reasoning never closes has no answer (it scores 0). See
    # `with_reasoning` and `rungs.verify.extract.after_reasoning`.
    reasoning_delimiters: tuple[str, ...] | None = None

    def with_reasoning(self, delimiters: Sequence[str] | None = ("</think>",)) -> Task:
        """A copy of this task that reads answers only after the reasoning (None: anywhere, the default).

        `delimiters` are TRL's `reasoning_delimiters`: the first one found in a completion ends its
        reasoning, at its last occurrence. Empty and whitespace-only ones are dropped (`reasoning_tags`).
        The copy pickles into verifier workers like the task.
        """
        task = copy.copy(self)
        task.reasoning_delimiters = reasoning_tags(delimiters)
        return task

    # -- prompts and parsing --------------------------------------------------------------------
    @abc.abstractmethod
    def prompt(self, problem: Problem, style: str = "instruct") -> str:
        """The text a policy is asked to continue (for chat models, the user message)."""

    def extract_answer(self, completion: str) -> str | None:
        """The answer inside a completion: the last <answer>...</answer> or \\boxed{...}.

        None when there is none, when the last wrapper opened is cut off, and (with
        `reasoning_delimiters` set) when the reasoning never closes or the answer is only inside it.
        """
        from rungs.verify.extract import after_reasoning, extract_answer

        if self.reasoning_delimiters and isinstance(completion, str):
            completion = after_reasoning(completion, self.reasoning_delimiters)
            if completion is None:
                return None
        return extract_answer(completion)

    # -- verification -----------------------------------------------------------------------------
    @abc.abstractmethod
    def verify_answer(self, problem: Problem, answer: str) -> Verdict:
        """Check an extracted answer. Must never eval model text. Runs inside a worker process."""

    # what `extract_answer` looks for, as the no-answer verdict names it
    answer_forms = "<answer>...</answer> or \\boxed{...}"

    def verify(self, problem: Problem, completion: str) -> Verdict:
        """Extract the answer from raw model text and check it."""
        answer = self.extract_answer(completion)
        if answer is None:
            from rungs.verify.extract import after_reasoning, cut_off

            if self.reasoning_delimiters and isinstance(completion, str):
                if after_reasoning(completion, self.reasoning_delimiters) is None:
                    shown = " or ".join(repr(d) for d in self.reasoning_delimiters)
                    return Verdict.fail(Status.NO_ANSWER, f"the reasoning never ends (no {shown}): an answer inside it does not count")
                completion = after_reasoning(completion, self.reasoning_delimiters)
            if cut_off(completion):
                return Verdict.fail(Status.NO_ANSWER, "the final answer is cut off: the last <answer> or \\boxed{ never closes")
            return Verdict.fail(Status.NO_ANSWER, f"no {self.answer_forms} found")
        return self.verify_answer(problem, answer)

    def answer_key(self, problem: Problem, answer: str) -> Hashable | None:
        """A key such that two answers with equal keys are the same answer (majority voting).

        None means the answer cannot be grouped (unparseable). The default is whitespace-stripped
        text; tasks override it with their own equivalence.
        """
        text = "".join(answer.split())
        return text or None

    # -- problems ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def generate(self, n: int, difficulty: float, seed: int = 0) -> list[Problem]:
        """`n` random problems of roughly `difficulty` (1 = easiest), each with a known answer."""

    def difficulty(self, problem: Problem) -> float:
        """The task's own difficulty estimate of a problem (used to order curricula)."""
        return float(problem.meta.get("difficulty", 1.0))

    def parse_problem(self, problem: Problem) -> None:  # noqa: B027 - optional hook
        """Raise `UserError` if the problem text is not a problem of this task."""

    def problem_from_prompt(self, prompt: str) -> str:
        """The problem text inside a whole prompt (the TRL adapter's fallback when a dataset has only
        a `prompt` column). The default is the prompt itself; a task whose problems have a form of
        their own (an integral) finds that form in it."""
        return prompt

    def problem_key(self, problem: Problem) -> Hashable:
        """A key under which two problems are the same problem (deduplicating variants).

        The default is the text without whitespace; tasks with a canonical form override it.
        """
        return "".join(problem.text.split())

    # -- variants ---------------------------------------------------------------------------------
    #: the transforms a task's `variants(..., transforms=...)` can be restricted to or extended with
    #: (LADDER's `--variant-transforms`); empty: the task's maker offers no choice
    variant_transforms: tuple[str, ...] = ()

    def variants(self, problem: Problem, n: int, rng: random.Random) -> list[Variant]:
        """Up to `n` easier or equivalent variants of `problem` (symbolic; no model involved)."""
        raise NotImplementedError(f"task {self.name!r} has no symbolic variant maker")

    @property
    def has_symbolic_variants(self) -> bool:
        return type(self).variants is not Task.variants
