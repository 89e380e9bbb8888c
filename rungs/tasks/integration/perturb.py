"""Certainly-wrong copies of a right antiderivative, for checking that the verifier rejects them.

Each perturbation changes F' by a non-zero amount (for a non-zero integrand f), so a verifier that
accepts one has a bug. The external-data test and bench/verify.py both use these.
"""

from __future__ import annotations

import random


def perturb(answer: str, rng: random.Random) -> str:
    """A certainly-wrong variant of the antiderivative `answer` (text in sympy syntax)."""
    kind = rng.choice(("scale", "add_x", "add_x2", "negate"))
    if kind == "scale":  # F' becomes k*f, k != 1
        k = rng.uniform(1.01, 3.0) if rng.random() < 0.5 else rng.uniform(0.3, 0.99)
        return f"{k:.4f}*({answer})"
    if kind == "add_x":  # F' becomes f + c
        return f"{answer} + {rng.randint(1, 5)}*x"
    if kind == "add_x2":  # F' becomes f - 2c*x/d
        return f"{answer} - {rng.randint(1, 5)}*x**2/{rng.randint(1, 4)}"
    return f"-({answer})"  # F' becomes -f
