"""LLM-written variants, as in LADDER (Simonds & Yoshiyama 2025, arXiv 2503.00735).

The paper asks the model itself for easier (or equivalent) versions of a hard problem: each
request samples 3-5 transformations from a library plus a persona ("think like Euler"), asks for
a batch of variants, and cycles the temperature between 0.8 and 1.4 for diversity. About 70% of
requests ask for easier variants and 30% for equivalent ones. The answers are parsed with the
task's own (safe) problem parser, so a variant that is not a well-posed problem of the task is
dropped; variants harder than their parent (by the task's difficulty measure), unsolvable ones
(an optional solver check under a time limit) and duplicates are dropped too.

This maker plugs into `rungs.variants.tree.variant_tree(make_variants=...)` to recurse.
It needs an instruction-following policy (hf, openai, vllm); the embedded character-level model
cannot write problems, so the built-in tasks use their symbolic mutators for it instead.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

from rungs.errors import UserError
from rungs.policies.base import Policy, SamplingParams
from rungs.tasks.base import Task, Variant
from rungs.types import Problem

EASIER_TRANSFORMATIONS: tuple[str, ...] = (
    "remove one term of the integrand",
    "replace a coefficient by 1 or by a smaller integer",
    "lower an exponent by one",
    "replace an inner function (such as x**2 inside sin) by plain x",
    "keep only one factor of a product",
    "replace a trigonometric function by a polynomial of low degree",
    "replace an exponential of a composite argument by exp(x)",
    "remove a square root",
    "split a sum and keep the simpler part",
    "replace a rational function by its polynomial part",
    "make the argument of a logarithm linear",
    "drop a constant shift inside a function",
)
EQUIVALENT_TRANSFORMATIONS: tuple[str, ...] = (
    "change a coefficient to a different integer of similar size",
    "rewrite the integrand with a trigonometric or algebraic identity",
    "swap a function for a sibling of similar difficulty (sin for cos, exp(x) for exp(-x))",
    "shift the variable by a constant",
    "expand or factor a product",
)
PERSONAS: tuple[str, ...] = (
    "Think like Leonhard Euler, who loved turning hard problems into chains of simple ones.",
    "Think like Carl Friedrich Gauss, methodical and precise.",
    "Think like Srinivasa Ramanujan, with an eye for patterns.",
    "Think like a patient calculus teacher preparing warm-up exercises.",
    "Think like George Polya: solve a simpler related problem first.",
    "Think like a competition coach building a ladder of practice problems.",
)

PROMPT_TEMPLATE = """{persona}

Here is a problem:
{problem}

Write {count} new problems that are {kind} than this one, in exactly the same format.
Apply these transformations (one or more per new problem):
{transformations}

Each new problem must be well-posed and solvable. Put each new problem on its own line inside
<problem>...</problem> tags, and write nothing else."""

_PROBLEM_TAG = re.compile(r"<problem>(.*?)</problem>", re.DOTALL)
_LIST_MARKER = re.compile(r"^\s*(?:[-*]|\d+[.)])\s+")


@dataclass
class LLMVariantConfig:
    """Settings of the paper, as defaults."""

    variants_per_prompt: int = 10
    transformations_per_prompt: tuple[int, int] = (3, 5)
    temperatures: tuple[float, ...] = (0.8, 1.0, 1.2, 1.4)  # cycled across requests
    easier_fraction: float = 0.7  # the rest ask for equivalent variants
    max_new_tokens: int = 768
    max_difficulty_ratio: float = 1.0  # a variant may be at most this times its parent's difficulty
    requests_per_call: int = 2  # policy.generate samples per make_variants call
    seed: int = 0
    extra_easier: tuple[str, ...] = field(default_factory=tuple)


class LLMVariantMaker:
    """`make_variants(problem, n, rng) -> list[Variant]`, written by a policy (see the module docstring).

    `solvable` is an optional check (problem -> bool), e.g. a symbolic solver under a timeout,
    standing in for the paper's "no solver handles it in 5 s" filter.
    """

    def __init__(
        self,
        policy: Policy,
        task: Task,
        config: LLMVariantConfig | None = None,
        solvable: Callable[[Problem], bool] | None = None,
    ) -> None:
        if policy.prompt_style != "instruct":
            instead = ("use the task's symbolic variants instead (--variant-source symbolic)" if task.has_symbolic_variants
                       else f"task {task.name!r} has no symbolic variants either: use an instruction-following policy "
                            "(hf:MODEL), or test-time RL without variants (rungs ttrl --mode vote)")
            raise UserError(f"policy {policy.name!r} cannot write variants (it is not an instruction-following model); "
                            f"{instead}")
        self.policy = policy
        self.task = task
        self.config = config or LLMVariantConfig()
        self.solvable = solvable
        self._request = 0
        self.stats = {"requested": 0, "parsed": 0, "ill_posed": 0, "too_hard": 0, "unsolvable": 0, "duplicate": 0, "kept": 0}

    def well_posed_share(self) -> float | None:
        """Of the problems the model wrote (parsed from its replies), the share that passed the
        task's well-posedness check (`task.parse_problem`); None before any were parsed."""
        parsed = self.stats["parsed"]
        return None if parsed == 0 else (parsed - self.stats["ill_posed"]) / parsed

    def build_prompt(self, problem: Problem, rng: random.Random, easier: bool) -> str:
        lo, hi = self.config.transformations_per_prompt
        library = list(EASIER_TRANSFORMATIONS + self.config.extra_easier) if easier else list(EQUIVALENT_TRANSFORMATIONS)
        chosen = rng.sample(library, k=min(len(library), rng.randint(lo, hi)))
        return PROMPT_TEMPLATE.format(
            persona=rng.choice(PERSONAS),
            problem=problem.text,
            count=self.config.variants_per_prompt,
            kind="easier" if easier else "about as hard (equivalent)",
            transformations="\n".join(f"- {t}" for t in chosen),
        )

    def next_temperature(self) -> float:
        temps = self.config.temperatures
        temperature = temps[self._request % len(temps)]
        self._request += 1
        return temperature

    def __call__(self, problem: Problem, n: int, rng: random.Random, *, depth: int = 1) -> list[Variant]:
        parent_difficulty = self.task.difficulty(problem)
        seen: set[Hashable] = {self.task.problem_key(problem)}
        kept: list[Variant] = []
        for _ in range(self.config.requests_per_call):
            if len(kept) >= n:
                break
            easier = rng.random() < self.config.easier_fraction
            prompt = self.build_prompt(problem, rng, easier)
            sampling = SamplingParams(
                temperature=self.next_temperature(), max_new_tokens=self.config.max_new_tokens, seed=rng.randrange(2**31)
            )
            (completions,) = self.policy.generate([prompt], n=1, sampling=sampling)
            self.stats["requested"] += 1
            for text in parse_problem_lines(completions[0].text):
                self.stats["parsed"] += 1
                candidate = Problem(id=f"{problem.id}/llm{len(kept)}", text=text, meta={"source": "llm"})
                variant = self._admit(candidate, problem, parent_difficulty, easier, seen, depth)
                if variant is not None:
                    kept.append(variant)
                if len(kept) >= n:
                    break
        return kept

    def _admit(self, candidate: Problem, parent: Problem, parent_difficulty: float, easier: bool,
               seen: set[Hashable], depth: int) -> Variant | None:
        try:
            self.task.parse_problem(candidate)
        except (UserError, ValueError):
            self.stats["ill_posed"] += 1
            return None
        difficulty = self.task.difficulty(candidate)
        if difficulty > parent_difficulty * self.config.max_difficulty_ratio + 1e-9:
            self.stats["too_hard"] += 1
            return None
        key = self.task.problem_key(candidate)
        if key in seen:
            self.stats["duplicate"] += 1
            return None
        if self.solvable is not None and not self.solvable(candidate):
            self.stats["unsolvable"] += 1
            return None
        seen.add(key)
        self.stats["kept"] += 1
        return Variant(
            problem=candidate,
            difficulty=difficulty,
            transform="llm:easier" if easier else "llm:equivalent",
            parent_id=parent.id,
            depth=depth,
        )


def parse_problem_lines(text: str) -> Sequence[str]:
    """The problems a model wrote: <problem> tags if present, else non-empty lines that look like one."""
    tagged = [m.strip() for m in _PROBLEM_TAG.findall(text) if m.strip()]
    if tagged:
        return tagged
    lines = []
    for line in text.splitlines():
        line = _LIST_MARKER.sub("", line).strip()
        if line and len(line) < 500:
            lines.append(line)
    return lines
