"""Integration: find an antiderivative (or the value of a definite integral), checked numerically.

LADDER's task. A problem is `integrate(f, x)` or `integrate(f, (x, a, b))` in sympy syntax, or
LaTeX (`\\int_0^1 x^2\\,dx`); see `problem.py`. An answer is any expression whose derivative is
the integrand (any constant, any equivalent form), or the integral's value; see `verify.py` for
how that is checked without `simplify` and without trusting the answer text.

    task = IntegrationTask()                               # method="derivative" (default)
    task.verify(Problem("p", "integrate(2*x*cos(x**2), x)"), "... <answer>sin(x**2) + C</answer>")
    IntegrationTask(method="quadrature")                   # LADDER's interval-quadrature protocol

The task object holds only its settings (a frozen `Checker`), so it pickles into VerifierPool
workers; parsing and sample points are cached per process.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Hashable

from rungs.errors import UserError
from rungs.tasks.base import PROMPT_STYLES, Task, Variant
from rungs.tasks.integration.problem import MAX_PROBLEM_CHARS, ParsedIntegral, parse_integral
from rungs.tasks.integration.verify import METHODS, Checker
from rungs.types import Problem, Verdict
from rungs.verify.safe_expr import CONSTANTS, FUNCTIONS

# Everything a compact prompt or a sympy-syntax answer can contain: digits, the letters of the
# function names, constants and x, operators, brackets, comma, point, space.
ALPHABET = "".join(sorted(set(
    string.digits + "".join(FUNCTIONS) + "".join(CONSTANTS) + "integrate" + "xI" + "+-*/^()., "
)))


class IntegrationTask(Task):
    name = "integration"
    description = "antiderivatives and definite integrals (LADDER), checked numerically against the integrand"
    needs_answer = False  # the integrand itself is the check; Problem.answer is not needed
    alphabet = ALPHABET

    def __init__(self, method: str = "derivative", rtol: float = 1e-6, n_points: int = 8, min_points: int = 5) -> None:
        if method not in METHODS:
            raise UserError(f"integration: unknown method {method!r}: expected one of {', '.join(METHODS)}")
        self.checker = Checker(method=method, rtol=rtol, n_points=n_points, min_points=min_points)

    # -- prompts and parsing -----------------------------------------------------------------------
    def prompt(self, problem: Problem, style: str = "instruct") -> str:
        if style not in PROMPT_STYLES:
            raise UserError(f"integration: unknown prompt style {style!r}: expected one of {', '.join(PROMPT_STYLES)}")
        parsed = self.parse_problem(problem)
        text = problem.text.strip() if "\\" not in problem.text else parsed.to_text()
        if style == "compact":
            return text
        if parsed.definite:
            return (
                f"Evaluate the definite integral {text}.\n"
                "Show your reasoning, then put the final value alone inside <answer>...</answer> "
                "in sympy syntax, for example <answer>pi/4 - log(2)/2</answer>."
            )
        return (
            f"Find an antiderivative: {text}.\n"
            "Show your reasoning, then put the final antiderivative alone inside <answer>...</answer> "
            "in sympy syntax (** for powers, exp, log, sqrt, atan, ...), for example "
            "<answer>x**3/3 + sin(2*x)/2</answer>. No + C is needed."
        )

    def parse_problem(self, problem: Problem) -> ParsedIntegral:  # type: ignore[override]
        """The parsed integral; a one-line UserError naming the text and the expected forms."""
        return parse_integral(problem.text)

    def problem_from_prompt(self, prompt: str) -> str:
        """The first integral in `prompt` that parses: `integrate(...)` / `Integral(...)` with its
        brackets balanced, or a `$...$` / `\\(...\\)` span holding `\\int`; else the prompt itself.
        So rungs' own prompt ("Find an antiderivative: integrate(7*exp(x), x). Show ...") gives the integral."""
        candidates = []
        for match in re.finditer(r"(?:integrate|Integral)\s*\(", prompt):
            depth = 0
            for end in range(match.end() - 1, min(len(prompt), match.start() + MAX_PROBLEM_CHARS)):
                depth += {"(": 1, ")": -1}.get(prompt[end], 0)
                if depth == 0:
                    candidates.append(prompt[match.start():end + 1])
                    break
        candidates += [m.group(0) for m in re.finditer(r"\$[^$]*\\int[^$]*\$|\\\((?:(?!\\\)).)*\\int(?:(?!\\\)).)*\\\)",
                                                         prompt, flags=re.DOTALL)]
        for text in candidates:
            try:
                parse_integral(text)
            except UserError:
                continue
            return text
        return prompt

    def problem_key(self, problem: Problem) -> Hashable:
        """The canonical sympy form, so x^2 and x**2 (or (x*x**2) and x**3) are one problem."""
        try:
            return parse_integral(problem.text).to_text()
        except UserError:
            return super().problem_key(problem)

    # -- verification ------------------------------------------------------------------------------
    def verify_answer(self, problem: Problem, answer: str) -> Verdict:
        return self.checker.verify(problem.text, answer)

    def answer_key(self, problem: Problem, answer: str) -> Hashable | None:
        """Antiderivatives that differ by a constant share a key (their derivative's values)."""
        return self.checker.answer_key(problem.text, answer)

    # -- problems and variants (built by generator.py and variants.py) -------------------------------
    def generate(self, n: int, difficulty: float, seed: int = 0) -> list[Problem]:
        from rungs.tasks.integration.generator import generate_problems

        return generate_problems(n, difficulty, seed)

    def skill_problems(self, n: int, seed: int = 0, *, mixed_fraction: float = 0.02, single_fraction: float = 0.4,
                       exclude: set[Hashable] | None = None) -> list[Problem]:
        """The skills pretraining distribution (skills.py): single rules, sums term by term, sparse mixed sums.

        `exclude` holds `problem_key`s never to emit (the built-in evaluation sets).
        """
        from rungs.tasks.integration.skills import skill_problems

        return skill_problems(n, seed, mixed_fraction=mixed_fraction, single_fraction=single_fraction,
                              exclude=exclude, key=lambda text: self.problem_key(Problem("key", text)))

    def difficulty(self, problem: Problem) -> float:
        from rungs.tasks.integration.generator import difficulty_of

        return float(difficulty_of(self.parse_problem(problem).integrand))

    def variants(self, problem: Problem, n: int, rng: random.Random) -> list[Variant]:
        from rungs.tasks.integration.variants import easier_variants

        return easier_variants(problem, n, rng)


__all__ = ["ALPHABET", "IntegrationTask", "ParsedIntegral", "parse_integral"]
