"""A whitelisted parser for mathematical text written by a model.

Model output is hostile input, so it never reaches `eval`, `exec`, `sympify` or `parse_expr`
(all of which run Python). Instead this module tokenises the text itself, parses it with a small
precedence-climbing grammar into a plain AST, and only then builds sympy objects from that AST,
calling sympy constructors for whitelisted operations and functions directly.

Grammar (numbers, names, + - * / ^ **, parentheses, implicit multiplication, function calls;
with the caller's variables known, `x(x-1)` and glued names like `xsin(x)` are products):

    expr    := term (("+" | "-") term)*
    term    := unary (("*" | "/") unary | <implicit> power)*
    unary   := ("+" | "-") unary | power
    power   := atom (("^" | "**") unary)?          right-associative: 2^3^2 = 2^9
    atom    := NUMBER | NAME | NAME "(" expr ("," expr)* ")" | "(" expr ")"

Limits are checked before any sympy work: text length, nesting depth, node count, digits in a
number literal, the size of numeric exponents, and the digits of any integer a power of numbers
would produce (so 9^9^9 is refused instead of computed). Countdown walks the AST directly with
exact fractions; integration converts it to sympy with `to_sympy`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import sympy

from rungs.errors import UnsafeExpression


class ExpressionSyntaxError(ValueError):
    """The text is not an expression of the grammar (scored as unparseable)."""


@dataclass(frozen=True)
class Limits:
    max_length: int = 1000  # characters of input text
    max_depth: int = 40  # nesting of parentheses, calls and operators
    max_nodes: int = 400  # AST nodes
    max_number_digits: int = 30  # digits in one number literal
    max_exponent: int = 200  # |numerator| and |denominator| of a numeric exponent
    max_result_digits: int = 400  # digits of a number that a power of numbers would produce


DEFAULT_LIMITS = Limits()

# ---- AST -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Num:
    text: str  # digits with an optional decimal point and exponent, as written


@dataclass(frozen=True)
class Name:
    name: str


@dataclass(frozen=True)
class Neg:
    operand: Node


@dataclass(frozen=True)
class BinOp:
    op: str  # one of + - * / ^
    left: Node
    right: Node
    # the operator as the text wrote it (`**` for a power written so), for messages; "" when built
    written: str = field(default="", compare=False, repr=False)


@dataclass(frozen=True)
class Call:
    func: str  # canonical function name (aliases resolved)
    args: tuple[Node, ...]


Node = Num | Name | Neg | BinOp | Call

# ---- names ---------------------------------------------------------------------------------------

# canonical name -> (sympy callable, allowed argument counts)
FUNCTIONS: dict[str, tuple[object, tuple[int, ...]]] = {
    "sin": (sympy.sin, (1,)), "cos": (sympy.cos, (1,)), "tan": (sympy.tan, (1,)),
    "cot": (sympy.cot, (1,)), "sec": (sympy.sec, (1,)), "csc": (sympy.csc, (1,)),
    "asin": (sympy.asin, (1,)), "acos": (sympy.acos, (1,)), "atan": (sympy.atan, (1,)),
    "acot": (sympy.acot, (1,)), "asec": (sympy.asec, (1,)), "acsc": (sympy.acsc, (1,)),
    "sinh": (sympy.sinh, (1,)), "cosh": (sympy.cosh, (1,)), "tanh": (sympy.tanh, (1,)),
    "coth": (sympy.coth, (1,)), "sech": (sympy.sech, (1,)), "csch": (sympy.csch, (1,)),
    "asinh": (sympy.asinh, (1,)), "acosh": (sympy.acosh, (1,)), "atanh": (sympy.atanh, (1,)),
    "acoth": (sympy.acoth, (1,)), "asech": (sympy.asech, (1,)), "acsch": (sympy.acsch, (1,)),
    "exp": (sympy.exp, (1,)), "log": (sympy.log, (1, 2)), "sqrt": (sympy.sqrt, (1,)),
    "cbrt": (sympy.cbrt, (1,)), "Abs": (sympy.Abs, (1,)), "erf": (sympy.erf, (1,)),
    "atan2": (sympy.atan2, (2,)),
    # special functions that antiderivatives of elementary integrands need
    "gamma": (sympy.gamma, (1,)), "erfi": (sympy.erfi, (1,)), "Si": (sympy.Si, (1,)), "Ci": (sympy.Ci, (1,)),
    "Shi": (sympy.Shi, (1,)), "Chi": (sympy.Chi, (1,)), "Ei": (sympy.Ei, (1,)), "li": (sympy.li, (1,)),
    "fresnels": (sympy.fresnels, (1,)), "fresnelc": (sympy.fresnelc, (1,)),
}
# Functions sympy evaluates eagerly on numbers (gamma(10**6) is a factorial bomb): the most a
# numeric argument may be.
MAX_EAGER_ARGUMENT = {"gamma": 200}
FUNCTION_ALIASES = {
    "arcsin": "asin", "arccos": "acos", "arctan": "atan", "arccot": "acot", "arcsec": "asec",
    "arccsc": "acsc", "arcsinh": "asinh", "arccosh": "acosh", "arctanh": "atanh", "arsinh": "asinh",
    "arcosh": "acosh", "artanh": "atanh", "arccoth": "acoth", "arcoth": "acoth", "ln": "log",
    "abs": "Abs", "tg": "tan", "ctg": "cot", "cosec": "csc",
}
CONSTANTS = {"pi": sympy.pi, "E": sympy.E, "e": sympy.E}
# Names that mean "not evaluated": an answer that restates the problem is a reward hack.
UNEVALUATED = {
    "integrate", "Integral", "integral", "int", "diff", "Derivative", "derivative", "Sum",
    "summation", "Limit", "limit", "Product", "dsolve", "solve", "Subs", "Function", "Lambda",
}


def canonical_function(name: str) -> str | None:
    name = FUNCTION_ALIASES.get(name, name)
    return name if name in FUNCTIONS else None


# Names a glued run of letters may be split into (besides the caller's variables).
KNOWN_NAMES = frozenset(FUNCTIONS) | frozenset(FUNCTION_ALIASES) | frozenset(CONSTANTS) | frozenset(UNEVALUATED)


def split_name(name: str, variables: Iterable[str] = ()) -> list[str]:
    """A run of letters written without spaces, split as LaTeX reads it: `xsin` -> x, sin; `xe` -> x, e.

    Only when every piece is a variable or a known name (function, constant, unevaluated
    operator), with as few pieces as possible; otherwise the name stays whole (`polylog`,
    `system`, `xy` with only x allowed), and is refused or accepted as it was. Names with digits
    or underscores (`C_1`, `x2`) are never split. Linear in the name's length.
    """
    allowed = KNOWN_NAMES | frozenset(variables)
    if name in allowed or len(name) < 2 or not (name.isascii() and name.isalpha()):
        return [name]
    longest = max(len(n) for n in allowed)
    n = len(name)
    best: list[list[str] | None] = [None] * n + [[]]  # best[i]: fewest pieces for name[i:]
    for i in range(n - 1, -1, -1):
        for j in range(i + 1, min(n, i + longest) + 1):
            rest = best[j]
            if rest is not None and name[i:j] in allowed and (best[i] is None or len(rest) + 1 < len(best[i])):
                best[i] = [name[i:j], *rest]
    return best[0] or [name]


# ---- tokenizer -----------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:"
    r"(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+(?![A-Za-z_(]))?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>\*\*|[-+*/^(),])"
    r")"
)
_ALLOWED_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_.+-*/^(), \t\n")


def tokenize(text: str, limits: Limits = DEFAULT_LIMITS) -> list[tuple[str, str]]:
    if not isinstance(text, str):
        raise ExpressionSyntaxError(f"expected text, got {type(text).__name__}")
    if len(text) > limits.max_length:
        raise UnsafeExpression(f"expression too long ({len(text)} characters > {limits.max_length})")
    bad = next((ch for ch in text if ch not in _ALLOWED_CHARS), None)
    if bad is not None:
        raise UnsafeExpression(f"character {bad!r} (U+{ord(bad):04X}) is not allowed")
    tokens: list[tuple[str, str]] = []
    pos, end = 0, len(text.rstrip())
    while pos < end:
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise ExpressionSyntaxError(f"unexpected text at column {pos + 1}: {text[pos:pos + 12]!r}")
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "name" and value.startswith("__"):
            raise UnsafeExpression(f"name {value!r} is not allowed")
        tokens.append((kind, value))  # `**` stays as written; the parser reads it as `^`
        pos = match.end()
    return tokens


# ---- parser --------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], limits: Limits, variables: Iterable[str] = ()) -> None:
        self.tokens = tokens
        self.pos = 0
        self.limits = limits
        # Names that are values, not functions: `x(x-1)` and `e(x+1)` are products, as in LaTeX.
        self.values = frozenset(variables) | frozenset(CONSTANTS)
        self.depth = 0
        self.nodes = 0

    # helpers
    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise ExpressionSyntaxError("unexpected end of expression")
        self.pos += 1
        return token

    def expect(self, value: str) -> None:
        token = self.take()
        if token[1] != value:
            raise ExpressionSyntaxError(f"expected {value!r}, found {token[1]!r}")

    def node(self, node: Node) -> Node:
        self.nodes += 1
        if self.nodes > self.limits.max_nodes:
            raise UnsafeExpression(f"expression too large (more than {self.limits.max_nodes} nodes)")
        return node

    def enter(self) -> None:
        self.depth += 1
        if self.depth > self.limits.max_depth:
            raise UnsafeExpression(f"expression nested too deeply (more than {self.limits.max_depth} levels)")

    # grammar
    def parse(self) -> Node:
        if not self.tokens:
            raise ExpressionSyntaxError("empty expression")
        tree = self.expr()
        if self.peek() is not None:
            raise ExpressionSyntaxError(f"unexpected {self.peek()[1]!r} after the expression")
        return tree

    def expr(self) -> Node:
        self.enter()
        left = self.term()
        while (tok := self.peek()) is not None and tok[1] in ("+", "-"):
            self.take()
            left = self.node(BinOp(tok[1], left, self.term()))
        self.depth -= 1
        return left

    def term(self) -> Node:
        left = self.unary()
        while (tok := self.peek()) is not None:
            if tok[1] in ("*", "/"):
                self.take()
                left = self.node(BinOp(tok[1], left, self.unary()))
            elif tok[0] in ("num", "name") or tok[1] == "(":
                # implicit multiplication: 2x, 3(x+1), (x+1)(x-1), x sin(x)
                left = self.node(BinOp("*", left, self.power()))
            else:
                break
        return left

    def unary(self) -> Node:
        tok = self.peek()
        if tok is not None and tok[1] in ("+", "-"):
            self.take()
            self.enter()
            operand = self.unary()
            self.depth -= 1
            return operand if tok[1] == "+" else self.node(Neg(operand))
        return self.power()

    def power(self) -> Node:
        base = self.atom()
        tok = self.peek()
        if tok is not None and tok[1] in ("^", "**"):
            self.take()
            self.enter()
            exponent = self.unary()
            self.depth -= 1
            return self.node(BinOp("^", base, exponent, tok[1]))
        return base

    def atom(self) -> Node:
        kind, value = self.take()
        if kind == "num":
            digits = sum(ch.isdigit() for ch in value.split("e")[0].split("E")[0])
            if digits > self.limits.max_number_digits:
                raise UnsafeExpression(f"number with {digits} digits (more than {self.limits.max_number_digits})")
            return self.node(Num(value))
        if kind == "name":
            nxt = self.peek()
            if nxt is not None and nxt[1] == "(":
                if value in UNEVALUATED:
                    raise UnsafeExpression(f"unevaluated {value}(...) is not an answer")
                func = canonical_function(value)
                if func is None and value in self.values:
                    return self.node(Name(value))  # x(x-1): term() multiplies it by the bracket
                if func is None:
                    raise UnsafeExpression(f"unknown function {value!r}")
                self.take()
                self.enter()
                args = [self.expr()]
                while (tok := self.peek()) is not None and tok[1] == ",":
                    self.take()
                    args.append(self.expr())
                self.expect(")")
                self.depth -= 1
                if len(args) not in FUNCTIONS[func][1]:
                    raise ExpressionSyntaxError(f"{value}() takes {' or '.join(map(str, FUNCTIONS[func][1]))} argument(s), got {len(args)}")
                return self.node(Call(func, tuple(args)))
            if value in UNEVALUATED:
                raise UnsafeExpression(f"unevaluated {value} is not an answer")
            return self.node(Name(value))
        if value == "(":
            self.enter()
            inner = self.expr()
            self.expect(")")
            self.depth -= 1
            return inner
        raise ExpressionSyntaxError(f"unexpected {value!r}")


def parse(text: str, limits: Limits = DEFAULT_LIMITS, variables: Iterable[str] = ()) -> Node:
    """Parse text into an AST; raises ExpressionSyntaxError or UnsafeExpression. Never runs code.

    With `variables`, implicit products are read as in LaTeX: a variable (or constant) followed
    by `(` multiplies the bracket (`x(x-1)`), and a run of letters that splits into variables and
    known names is their product (`xsin(x)` = x*sin(x), `xe^x` = x*e^x); see `split_name`.
    Without them (countdown), names are taken as written.
    """
    variables = tuple(variables)
    tokens = tokenize(text, limits)
    if variables:
        split: list[tuple[str, str]] = []
        for kind, value in tokens:
            if kind == "name":
                split.extend(("name", piece) for piece in split_name(value, variables))
            else:
                split.append((kind, value))
        tokens = split
    return _Parser(tokens, limits, variables).parse()


# ---- AST -> sympy --------------------------------------------------------------------------------


def number_to_sympy(text: str, limits: Limits = DEFAULT_LIMITS) -> sympy.Rational:
    """An exact rational for a decimal literal ('0.25' -> 1/4, '1e-3' -> 1/1000)."""
    mantissa, _, exponent = text.lower().partition("e")
    if exponent and abs(int(exponent)) > limits.max_exponent:
        raise UnsafeExpression(f"number exponent {exponent} too large")
    value = sympy.Rational(mantissa if not mantissa.endswith(".") else mantissa[:-1])
    if exponent:
        value *= sympy.Integer(10) ** int(exponent)
    return value


def _digits(number: sympy.Rational) -> int:
    p, q = abs(int(number.p)), int(number.q)
    return max(p.bit_length(), q.bit_length()) * 30103 // 100000 + 1


def _log10(number: sympy.Rational) -> float:
    """log10 of the larger of |numerator| and denominator (exact for powers of ten; no float overflow)."""
    return math.log10(max(abs(int(number.p)), int(number.q)))


def _power(base: sympy.Expr, exponent: sympy.Expr, limits: Limits) -> sympy.Expr:
    if exponent.is_Rational:
        if max(abs(int(exponent.p)), int(exponent.q)) > limits.max_exponent:
            raise UnsafeExpression(f"exponent {exponent} too large (limit {limits.max_exponent})")
        if base.is_Rational and base != 0:
            # digits of base**exponent ~= |exponent| * log10 of base's larger part (so 10^999 has
            # 1000 digits, not 2 * 999): refuse before computing it
            if abs(float(exponent)) * _log10(base) > limits.max_result_digits:
                raise UnsafeExpression(f"power {base}^{exponent} would be too large")
    elif exponent.is_Number:  # a float exponent
        if abs(float(exponent)) > limits.max_exponent:
            raise UnsafeExpression(f"exponent {exponent} too large (limit {limits.max_exponent})")
    return sympy.Pow(base, exponent)


def to_sympy(
    node: Node,
    variables: Iterable[str] = ("x",),
    limits: Limits = DEFAULT_LIMITS,
) -> sympy.Expr:
    """Build a sympy expression from an AST, with only whitelisted names and functions.

    `variables` are the free symbols allowed (all real); any other bare name is refused, so a
    stray symbol cannot slip through as "an answer with an unknown constant".
    """
    allowed = {name: sympy.Symbol(name, real=True) for name in variables}

    def build(n: Node) -> sympy.Expr:
        if isinstance(n, Num):
            return number_to_sympy(n.text, limits)
        if isinstance(n, Name):
            if n.name in allowed:
                return allowed[n.name]
            if n.name in CONSTANTS:
                return CONSTANTS[n.name]
            if canonical_function(n.name) is not None:
                raise ExpressionSyntaxError(f"function {n.name!r} used without arguments")
            raise UnsafeExpression(f"unknown symbol {n.name!r} (allowed: {', '.join(sorted(allowed)) or 'none'})")
        if isinstance(n, Neg):
            return -build(n.operand)
        if isinstance(n, BinOp):
            left, right = build(n.left), build(n.right)
            if n.op == "+":
                return left + right
            if n.op == "-":
                return left - right
            if n.op == "*":
                return left * right
            if n.op == "/":
                if right == 0:
                    raise UnsafeExpression("division by zero")
                return left / right
            return _power(left, right, limits)
        if isinstance(n, Call):
            func, _ = FUNCTIONS[n.func]
            args = [build(a) for a in n.args]
            bound = MAX_EAGER_ARGUMENT.get(n.func)
            if bound is not None and any(a.is_Number and abs(a) > bound for a in args):
                raise UnsafeExpression(f"{n.func}() of a number above {bound} is refused")
            return func(*args)  # type: ignore[operator]
        raise TypeError(f"not an AST node: {n!r}")

    expr = build(node)
    if expr.has(sympy.zoo, sympy.oo, -sympy.oo, sympy.nan):
        raise UnsafeExpression("expression is not finite (contains oo, zoo or nan)")
    return expr


def parse_sympy(text: str, variables: Iterable[str] = ("x",), limits: Limits = DEFAULT_LIMITS) -> sympy.Expr:
    """Text -> sympy expression, safely (see the module docstring)."""
    variables = tuple(variables)
    return to_sympy(parse(text, limits, variables), variables, limits)


# ---- checking trees that came from elsewhere (LaTeX parsers) -------------------------------------

# sqrt and cbrt build Pow nodes, so only the function classes themselves are heads.
_ALLOWED_HEADS = tuple({f for f, _ in FUNCTIONS.values() if isinstance(f, type)}) + (sympy.Add, sympy.Mul, sympy.Pow)


def check_tree(expr: sympy.Basic, variables: Iterable[str] = ("x",), limits: Limits = DEFAULT_LIMITS) -> sympy.Expr:
    """Walk a sympy tree built by another parser (e.g. latex2sympy) and enforce the same whitelist.

    Returns the tree with its symbols replaced by the real symbols `to_sympy` would have built.
    """
    allowed = set(variables)
    count = 0

    def walk(e: sympy.Basic, depth: int) -> None:
        nonlocal count
        count += 1
        if count > limits.max_nodes:
            raise UnsafeExpression(f"expression too large (more than {limits.max_nodes} nodes)")
        if depth > limits.max_depth:
            raise UnsafeExpression(f"expression nested too deeply (more than {limits.max_depth} levels)")
        if isinstance(e, (sympy.Integral, sympy.Derivative, sympy.Sum, sympy.Limit, sympy.Product)):
            raise UnsafeExpression(f"unevaluated {type(e).__name__} is not an answer")
        if e.is_Symbol:
            if e.name not in allowed:
                raise UnsafeExpression(f"unknown symbol {e.name!r} (allowed: {', '.join(sorted(allowed)) or 'none'})")
            return
        if e.is_Rational:
            if _digits(e) > limits.max_result_digits:
                raise UnsafeExpression("number too large")
            return
        if e.is_Number or e in (sympy.pi, sympy.E):
            if not e.is_finite:
                raise UnsafeExpression("expression is not finite")
            return
        if not isinstance(e, _ALLOWED_HEADS):
            raise UnsafeExpression(f"{type(e).__name__} is not allowed in an answer")
        for arg in e.args:
            walk(arg, depth + 1)

    walk(expr, 0)
    replacements = {s: sympy.Symbol(s.name, real=True) for s in expr.free_symbols}
    return expr.xreplace(replacements)


def is_finite_number(value: complex) -> bool:
    return math.isfinite(value.real) and math.isfinite(value.imag)
