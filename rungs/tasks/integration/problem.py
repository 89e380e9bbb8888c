"""Parsing integration problems (and the LaTeX shared with answers), safely.

Problem text is untrusted too: it comes from users and from LLM-written LADDER variants. So it
goes through the same whitelisted parser as model answers (`rungs.verify.safe_expr`), never
through `sympify`: we cut the `integrate(` wrapper off ourselves, split on the top-level commas,
and parse the integrand and the bounds with `parse_sympy`.

Accepted forms:

    integrate(f, x)                    indefinite (sympy syntax; `^` works as a power too)
    integrate(f, (x, a, b))            definite; a, b may be oo / -oo
    Integral(f, x), Integral(f, (x, a, b))
    \\int x e^{x} dx,  \\int_0^1 x^2\\,dx  (LaTeX, through latex2sympy2_extended)

The variable is one letter other than e, E and I; sympy's imaginary unit `I` (and Python's
complex literals, `2j`) may appear as constants, as they do in LLM-written sympy variants.

The LaTeX path: latex2sympy2_extended parses with an ANTLR grammar and builds sympy objects
unevaluated (it never evals the text), but it knows far more LaTeX than an integral needs
(matrices, determinants) and builds unevaluated powers like 2^{10^{100}}. So we (1) refuse any
LaTeX command outside a small whitelist before parsing, (2) walk its tree with
`safe_expr.check_tree`, then (3) print the tree and parse the printout with `parse_sympy`, so that
exactly the same size, digit and exponent limits hold on both paths.

Parsing is cached per problem text (`parse_integral` is an `lru_cache`): the verifier parses the
same problem once per answer, thousands of times in a GRPO run.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

import sympy

from rungs.errors import UnsafeExpression, UserError
from rungs.verify.safe_expr import ExpressionSyntaxError, check_tree, parse_sympy

MAX_PROBLEM_CHARS = 2000
EXPECTED_FORMS = "integrate(f, x), integrate(f, (x, a, b)) in sympy syntax, or LaTeX such as \\int_0^1 x^2\\,dx"
# Names that would shadow a constant if used as the variable of integration.
_RESERVED_VARIABLES = frozenset({"e", "E", "I"})
_INFINITIES = {"oo": sympy.oo, "+oo": sympy.oo, "-oo": -sympy.oo, "inf": sympy.oo, "+inf": sympy.oo,
               "-inf": -sympy.oo, "infinity": sympy.oo, "-infinity": -sympy.oo}
_I_PLACEHOLDER = "I"  # parsed as a real symbol named I, then replaced by sympy.I
_COMPLEX_LITERAL = re.compile(r"(?<![\w.])(\d+(?:\.\d*)?|\.\d+)[jJ](?!\w)")


@dataclass(frozen=True)
class ParsedIntegral:
    """An integral: `integrand` d`var`, over [lower, upper] when definite (both None otherwise)."""

    integrand: sympy.Expr
    var: sympy.Symbol
    lower: sympy.Expr | None = None
    upper: sympy.Expr | None = None

    @property
    def definite(self) -> bool:
        return self.lower is not None

    def to_text(self) -> str:
        """The canonical sympy-syntax text, e.g. `integrate(3*x**2, x)`."""
        if self.definite:
            return f"integrate({sympy.sstr(self.integrand)}, ({self.var}, {sympy.sstr(self.lower)}, {sympy.sstr(self.upper)}))"
        return f"integrate({sympy.sstr(self.integrand)}, {self.var})"


# ---- plain-text helpers ------------------------------------------------------------------------


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside parentheses/brackets/braces; raises ExpressionSyntaxError if unbalanced."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth < 0:
                raise ExpressionSyntaxError("unbalanced parentheses")
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth != 0:
        raise ExpressionSyntaxError("unbalanced parentheses")
    parts.append(text[start:])
    return [p.strip() for p in parts]


def parse_with_constants(text: str, variables: Iterable[str]) -> sympy.Expr:
    """`parse_sympy`, with sympy's imaginary unit `I` allowed as a constant (sympy syntax)."""
    names = tuple(variables)
    expr = parse_sympy(text, variables=(*names, _I_PLACEHOLDER))
    placeholder = sympy.Symbol(_I_PLACEHOLDER, real=True)
    if placeholder in expr.free_symbols:
        expr = expr.xreplace({placeholder: sympy.I})
        if expr.has(sympy.zoo, sympy.oo, -sympy.oo, sympy.nan):
            raise UnsafeExpression("expression is not finite (contains oo, zoo or nan)")
    return expr


def _strip_math_delimiters(text: str) -> str:
    text = text.strip()
    for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if len(text) >= len(left) + len(right) and text.startswith(left) and text.endswith(right):
            return text[len(left) : len(text) - len(right)].strip()
    return text


# ---- LaTeX -------------------------------------------------------------------------------------

# Commands an integral or an antiderivative needs. Anything else (\begin{matrix}, \det, \sum,
# \lim, \frac{d}{dx} is fine but \partial is not) is refused before latex2sympy sees the text.
LATEX_COMMANDS = frozenset(
    """frac sqrt ln log exp sin cos tan cot sec csc arcsin arccos arctan arccot arcsec arccsc
    sinh cosh tanh coth sech csch arsinh arcsinh arcosh arccosh artanh arctanh arcoth arccoth
    pi int infty""".split()
)
# Pure layout, removed before any parsing: \left( -> (, \, -> space, \cdot -> *.
_LAYOUT_REWRITES = (
    (re.compile(r"\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big|displaystyle|limits)(?![A-Za-z])"), ""),
    (re.compile(r"\\(?:[,;:! ]|quad(?![A-Za-z])|qquad(?![A-Za-z]))"), " "),
    (re.compile(r"\\(?:cdot|times)(?![A-Za-z])"), "*"),
    (re.compile(r"\\(?:lvert|rvert|vert)(?![A-Za-z])|\\\|"), "|"),
)
_LATEX_REWRITES = (
    (re.compile(r"\\[dt]frac(?![A-Za-z])"), r"\\frac"),
    # \operatorname{arsinh} -> \arsinh; \mathrm{d}x -> dx; \mathrm{e} -> e (Euler's number)
    (re.compile(r"\\(?:operatorname|mathrm|text|rm)\s*\{\s*([A-Za-z]+)\s*\}"),
     lambda m: ("\\" if m.group(1) in LATEX_COMMANDS else "") + m.group(1)),
    # In calculus \log is the natural log (as in sympy); latex2sympy would read it as log base 10.
    (re.compile(r"\\log(?![A-Za-z_])"), r"\\ln"),
    # A function name written without its backslash (ln|x|) would be read as l*n; glued to the
    # letters before it (xsin(x), x ln x written xln(x)) it still ends the run: x\sin(x).
    (re.compile(r"(?<![\\A-Za-z])([A-Za-z]*?)(arcsin|arccos|arctan|sinh|cosh|tanh|sin|cos|tan|cot|sec|csc|ln|exp|sqrt)(?![A-Za-z])"),
     r"\1\\\2"),
)
_LATEX_COMMAND = re.compile(r"\\([A-Za-z]+)")
_SHORT_ARGUMENT_COMMANDS = re.compile(r"\\(frac|sqrt)(?![A-Za-z])")
_COMMAND_TOKEN = re.compile(r"\\[A-Za-z]+")


def brace_short_arguments(text: str) -> str:
    """`\\frac13` -> `\\frac{1}{3}`, `\\frac\\pi2` -> `\\frac{\\pi}{2}`, `\\sqrt2 x` -> `\\sqrt{2} x`.

    In TeX an argument without braces is one token: a character or a command. Models write the
    short form often (`\\frac12 x^2`); latex2sympy reads only the braced one. An argument already
    in braces (or `\\sqrt[3]`'s optional one) is left as it is. The commands are rewritten from the
    last to the first, so that one nested in another's braced argument is done first and the
    positions of those before it do not move."""
    for match in reversed(list(_SHORT_ARGUMENT_COMMANDS.finditer(text))):
        pos = match.end()
        for _ in range(2 if match.group(1) == "frac" else 1):
            rest = len(text) - len(text[pos:].lstrip())
            if rest >= len(text) or text[rest] in "[}":
                break
            if text[rest] == "{":  # a braced argument: skipped whole, then the next one
                depth, pos = 0, rest
                while pos < len(text):
                    depth += (text[pos] == "{") - (text[pos] == "}")
                    pos += 1
                    if depth == 0:
                        break
                continue
            token = _COMMAND_TOKEN.match(text, rest)
            end = token.end() if token else rest + 1
            text = f"{text[:rest]}{{{text[rest:end]}}}{text[end:]}"
            pos = end + 2
    return text


_MAX_BRACE_DEPTH = 20


def strip_latex_layout(text: str) -> str:
    """Remove LaTeX that only sets layout (\\left, \\right, thin spaces) and spell \\cdot as *."""
    for pattern, replacement in _LAYOUT_REWRITES:
        text = pattern.sub(replacement, text)
    return text


def looks_like_latex(text: str) -> bool:
    return any(ch in text for ch in "\\{}|")


def latex_tree(text: str, max_length: int = 1000) -> sympy.Basic:
    """LaTeX -> an unevaluated, unchecked sympy tree (callers must `check_latex_tree` it).

    Raises ExpressionSyntaxError (not LaTeX we can read) or UnsafeExpression (refused command).
    """
    if len(text) > max_length:
        raise UnsafeExpression(f"expression too long ({len(text)} characters > {max_length})")
    text = strip_latex_layout(text)
    for pattern, replacement in _LATEX_REWRITES:
        text = pattern.sub(replacement, text)
    text = brace_short_arguments(text)
    for name in _LATEX_COMMAND.findall(text):
        if name not in LATEX_COMMANDS:
            raise UnsafeExpression(f"LaTeX command \\{name} is not supported")
    depth = 0
    for ch in text:
        depth += (ch == "{") - (ch == "}")
        if depth > _MAX_BRACE_DEPTH:
            raise UnsafeExpression(f"LaTeX nested too deeply (more than {_MAX_BRACE_DEPTH} braces)")
    from latex2sympy2_extended import latex2sympy
    from latex2sympy2_extended.latex2sympy2 import ConversionConfig

    config = ConversionConfig(interpret_as_mixed_fractions=False, interpret_simple_eq_as_assignment=False,
                              interpret_contains_as_eq=False, lowercase_symbols=False)
    try:
        return latex2sympy(text, conversion_config=config)
    except (UnsafeExpression, ExpressionSyntaxError):
        raise
    except Exception as err:  # noqa: BLE001 - latex2sympy raises bare Exceptions on bad input
        first = str(err).strip().splitlines()
        raise ExpressionSyntaxError(f"not LaTeX we can read ({first[0] if first else type(err).__name__})") from None


def check_latex_tree(tree: sympy.Basic, variables: Iterable[str]) -> sympy.Expr:
    """Whitelist-check a latex2sympy tree, then re-parse its printout with the safe parser.

    `\\mathrm{e}` arrives as a symbol `e`, which the safe parser reads as Euler's number.
    """
    names = tuple(variables)
    if not isinstance(tree, sympy.Expr):
        raise ExpressionSyntaxError(f"expected an expression, got {type(tree).__name__}")
    checked = check_tree(tree, variables=(*names, "e"))
    return parse_with_constants(sympy.sstr(checked), names)


def latex_to_sympy(text: str, variables: Iterable[str]) -> sympy.Expr:
    """LaTeX expression -> checked sympy expression (see the module docstring)."""
    return check_latex_tree(latex_tree(text), variables)


# ---- problems ----------------------------------------------------------------------------------


def _bad(text: str, why: str) -> UserError:
    """The one-line error for a problem that does not parse: the problem and the reason each cut to
    200 characters (a reason may quote the whole integrand)."""
    shown = text if len(text) <= 200 else text[:197] + "..."
    why = why if len(why) <= 200 else why[:197] + "..."
    return UserError(f"cannot parse integration problem {shown!r}: {why}; expected {EXPECTED_FORMS}")


def _variable(name: str, text: str) -> str:
    if not re.fullmatch(r"[A-Za-z]", name) or name in _RESERVED_VARIABLES:
        raise _bad(text, f"the variable of integration must be one letter other than e, E, I, got {name!r}")
    return name


def _bound(source: str, text: str) -> sympy.Expr:
    key = "".join(source.split()).lower()
    if key in _INFINITIES:
        return _INFINITIES[key]
    try:
        value = parse_with_constants(source, ())
    except (ExpressionSyntaxError, UnsafeExpression) as err:
        raise _bad(text, f"bound {source!r}: {err}") from None
    return _real_bound(value, source, text)


def _real_bound(value: sympy.Expr, source: str, text: str) -> sympy.Expr:
    if value in (sympy.oo, -sympy.oo):
        return value
    number = complex(value.evalf(20))
    if number.imag != 0 or number.real != number.real or abs(number.real) == float("inf"):
        raise _bad(text, f"bound {source!r} is not a finite real number")
    return value


def _parse_sympy_form(text: str, body: str) -> ParsedIntegral:
    try:
        parts = split_top_level(body)
    except ExpressionSyntaxError as err:
        raise _bad(text, str(err)) from None
    if len(parts) != 2 or not parts[0]:
        raise _bad(text, f"expected 2 arguments, got {len(parts)}")
    integrand_text, spec = parts
    lower = upper = None
    if spec.startswith("(") and spec.endswith(")"):
        bounds = split_top_level(spec[1:-1])
        if len(bounds) != 3:
            raise _bad(text, f"the limits {spec!r} must be (x, a, b)")
        var = _variable(bounds[0], text)
        lower, upper = _bound(bounds[1], text), _bound(bounds[2], text)
    else:
        var = _variable(spec, text)
    # Python's complex literals (2j) are sympy syntax too: 2j -> (2*I).
    integrand_text = _COMPLEX_LITERAL.sub(r"(\1*I)", integrand_text)
    try:
        integrand = parse_with_constants(integrand_text, (var,))
    except (ExpressionSyntaxError, UnsafeExpression) as err:
        raise _bad(text, f"integrand {integrand_text!r}: {err}") from None
    return ParsedIntegral(integrand, sympy.Symbol(var, real=True), lower, upper)


def _parse_latex_form(text: str, body: str) -> ParsedIntegral:
    try:
        tree = latex_tree(body)
    except (ExpressionSyntaxError, UnsafeExpression) as err:
        raise _bad(text, str(err)) from None
    if not isinstance(tree, sympy.Integral) or len(tree.limits) != 1:
        raise _bad(text, "expected one integral sign and one differential (dx)")
    limit = tree.limits[0]
    var = _variable(str(limit[0]), text)
    try:
        integrand = check_latex_tree(tree.function, (var,))
    except (ExpressionSyntaxError, UnsafeExpression) as err:
        raise _bad(text, f"integrand: {err}") from None
    if len(limit) == 1:
        return ParsedIntegral(integrand, sympy.Symbol(var, real=True))
    if len(limit) != 3:
        raise _bad(text, "a definite integral needs both bounds")
    bounds = []
    for raw in limit[1:]:
        if raw in (sympy.oo, -sympy.oo):
            bounds.append(raw)
            continue
        try:
            bounds.append(_real_bound(check_latex_tree(raw, ()), str(raw), text))
        except (ExpressionSyntaxError, UnsafeExpression) as err:
            raise _bad(text, f"bound {raw}: {err}") from None
    return ParsedIntegral(integrand, sympy.Symbol(var, real=True), bounds[0], bounds[1])


@functools.lru_cache(maxsize=4096)
def parse_integral(text: str) -> ParsedIntegral:
    """Problem text -> ParsedIntegral; a one-line UserError naming the text when it is not one."""
    if not isinstance(text, str) or not text.strip():
        raise _bad(str(text), "empty problem")
    if len(text) > MAX_PROBLEM_CHARS:
        raise _bad(text, f"longer than {MAX_PROBLEM_CHARS} characters")
    body = _strip_math_delimiters(text)
    match = re.fullmatch(r"(?:integrate|Integral)\s*\((.*)\)", body, flags=re.DOTALL)
    if match:
        return _parse_sympy_form(text, match.group(1))
    if "\\int" in body:
        return _parse_latex_form(text, body)
    raise _bad(text, "not an integral")
