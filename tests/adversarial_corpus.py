"""Hostile answers: what a model (or a reward-hacking policy) might write to break a verifier.

Every entry must score 0 for every task on the problems of tests/test_adversarial.py
(countdown: numbers 1 3 4 6, target 24; integration: integrate(3*x**2, x); math: answer 2), must
never run code, and must come back within the verifier's time limit. So no entry is an honest
right answer to those problems: nothing here is equal to 2, to x**3 (+ C), or to 24 from 1 3 4 6,
unless only code execution would make it so (`eval('1+1')`).

`MARKER` in an entry is replaced by the path of a file that must never be created; entries whose
payload would create it if run are the code-injection ones. `completions(marker)` wraps each entry
as `<answer>...</answer>`, and some also bare (no tags) or inside `\\boxed{...}`.
"""

from __future__ import annotations

MARKER = "@MARKER@"
MB = 1_000_000

CODE_INJECTION = [
    "__import__('os').system('touch @MARKER@')",
    '__import__("os").system("touch @MARKER@")',
    "__import__('subprocess').run(['touch', '@MARKER@'])",
    "__import__('subprocess').call('touch @MARKER@', shell=True)",
    "__import__('os').popen('touch @MARKER@').read()",
    "__import__('pathlib').Path('@MARKER@').touch()",
    "__import__('shutil').copy('/etc/hostname', '@MARKER@')",
    "open('@MARKER@', 'w').write('pwned')",
    'open("@MARKER@","a")',
    "exec(\"open('@MARKER@','w').write('x')\")",
    "exec('import os; os.system(\"touch @MARKER@\")')",
    "eval(\"__import__('os').system('touch @MARKER@')\")",
    "eval('1+1')",
    "eval(compile('1+1', 'x', 'eval'))",
    "compile('import os', 'x', 'exec')",
    "lambda: __import__('os').system('touch @MARKER@')",
    "(lambda: 1+1)()",
    "(lambda x: x)(1+1)",
    "(lambda f: f(f))(lambda f: f(f))",
    "().__class__.__bases__[0].__subclasses__()",
    "().__class__.__base__.__subclasses__()[59]()._module.__builtins__['__import__']('os').system('touch @MARKER@')",
    "[].__class__.__mro__[1].__subclasses__()",
    "''.__class__.__mro__[-1].__subclasses__()",
    "x.__class__",
    "x.__dict__",
    "x.__class__.__mro__",
    "x.__reduce__()",
    "__builtins__",
    "__builtins__.__dict__['__import__']('os').system('touch @MARKER@')",
    "__import__",
    "__class__",
    "__dict__",
    "__globals__",
    "getattr(__import__('os'), 'system')('touch @MARKER@')",
    "getattr(x, '__class__')",
    "getattr(getattr(x, '__cla'+'ss__'), '__ba'+'ses__')",
    "globals()['__builtins__']",
    "locals()",
    "vars()",
    "dir()",
    "type('X', (), {})",
    "setattr(x, 'y', 1)",
    "f\"{__import__('os').system('touch @MARKER@')}\"",
    "f'{open(\"@MARKER@\",\"w\")}'",
    "`touch @MARKER@`",
    "$(touch @MARKER@)",
    "${touch @MARKER@}",
    "${{7*7}}",
    "{{7*7}}",
    "{{ config.__class__.__init__.__globals__['os'].popen('touch @MARKER@') }}",
    "#{7*7}",
    "<%= `touch @MARKER@` %>",
    "x**3; import os; os.system('touch @MARKER@')",
    "x**3\nimport os\nos.system('touch @MARKER@')",
    "24\n__import__('os').system('touch @MARKER@')",
    "x; rm -rf /tmp/rungs-nonexistent",
    "x && touch @MARKER@",
    "x || touch @MARKER@",
    "x | tee @MARKER@",
    "x > @MARKER@",
    "x' OR '1'='1",
    "1; DROP TABLE problems; --",
    "'; DROP TABLE users; --",
    "x\" + __import__('os').system('touch @MARKER@') + \"",
    "%s%s%s%n",
    "{0.__class__}",
    "import os",
    "from os import system",
    "os.system('touch @MARKER@')",
    "sys.exit(0)",
    "exit()",
    "quit()",
    "raise SystemExit",
    "breakpoint()",
    "input()",
    "help()",
    "print(1)",
    "sympy.sympify(\"__import__('os').system('touch @MARKER@')\")",
    "sympify('x**3')",
    "parse_expr('x**3')",
    "S('x**3')",
    "Symbol('y')",
    "Function('f')(x)",
    "Lambda(x, x**3)",
    "x._sympy_()",
    "x.evalf(10**9)",
    "N(pi, 10**9)",
    "pickle.loads(b'cos\\nsystem\\n(S\"touch @MARKER@\"\\ntR.')",
    "bytes(10**10)",
    "'a'*10**10",
    "[0]*10**10",
    "range(10**18)",
    "while True: pass",
    "for i in range(10**9): pass",
    "@MARKER@",
    "file:///etc/passwd",
]

LATEX_MACROS = [
    "\\input{/etc/passwd}",
    "\\include{/etc/passwd}",
    "\\def\\x{\\x}\\x",
    "\\def\\a{\\a\\a}\\a",
    "\\newcommand{\\x}{\\x}\\x",
    "\\immediate\\write18{touch @MARKER@}",
    "\\write18{touch @MARKER@}",
    "\\openout1=@MARKER@",
    "\\catcode`\\{=12",
    "\\csname x\\endcsname",
    "\\usepackage{shellesc}\\ShellEscape{touch @MARKER@}",
    "\\loop\\iftrue\\repeat",
    "\\href{javascript:alert(1)}{x}",
    "\\verb|x|",
    "\\begin{verbatim}x\\end{verbatim}",
    "\\begin{pmatrix}1&0\\\\0&1\\end{pmatrix}",
    "\\det\\begin{pmatrix}1&0\\\\0&3\\end{pmatrix}",
    "\\text{the answer is seven}",
    "\\mathrm{x}^{\\mathrm{y}}",
    "\\left( x \\right",
]

EXPONENT_BOMBS = [
    "9**9**9**9",
    "9^9^9^9",
    "9**9**9",
    "10^10^10",
    "10**10**10",
    "(2**1000)**(2**1000)",
    "x**(10**100)",
    "x^(10^100)",
    "2^{2^{2^{99}}}",
    "10^{10^{10}}",
    "e^{e^{e^{e^{10}}}}",
    "exp(exp(exp(exp(100))))",
    "exp(10**100)",
    "10**-10**10",
    "3**-3**100",
    "x**999999999999",
    "(x+1)**100000",
    "(x+1)^1000000",
    "(1+x+x**2)**500",
    "99999999999999999999999999999**99999",
    "pow(9, 9**9)",
    "x**x**x**x**x**x",
    "x^{x^{x^{x^{x^{x}}}}}",
    "(1+1/10**100)**(10**100)",
    "sqrt(10**10**10)",
    "log(10**10**10)",
    "sin(10**10**10)",
    "1e999999",
    "1e308*10",
    "-1e999999",
    "1e-999999",
    "9.9e99999999",
    "0**-1",
    "0^{-1}",
    "(-1)**(1/3)**99999",
]

FACTORIAL_BOMBS = [
    "1000000!",
    "(10**9)!",
    "10^9!",
    "factorial(10**9)",
    "factorial(factorial(100))",
    "gamma(10**10)",
    "gamma(1e300)",
    "\\Gamma(10^{10})",
    "x!!!!!!",
    "99999!!",
    "binomial(10**9, 10**8)",
    "fibonacci(10**10)",
    "\\binom{10^9}{10^8}",
    "(3!)!!",
    # short text past the text screen: the parse's arithmetic is what is too large
    "\\binom{10^{9}}{5*10^8}",
    "\\binom{2^{40}}{2^{39}}",
    "(10^{9})!",
    "\\Gamma(10^{5})",
    "(2^{100})^{100}",
]

NON_FINITE = [
    "nan",
    "NaN",
    "oo",
    "-oo",
    "zoo",
    "inf",
    "-inf",
    "Infinity",
    "-Infinity",
    "float('nan')",
    "float('inf')",
    "1/0",
    "0/0",
    "x/0",
    "\\infty",
    "\\infty - \\infty",
    "oo - oo",
    "0*oo",
    "nan**0",
    "ComplexInfinity",
    "S.Infinity",
    "math.inf",
    "I*oo",
    "\\frac{1}{0}",
    "\\frac{0}{0}",
    "log(0)",
    "tan(pi/2)",
]

UNEVALUATED = [
    "Integral(x, x)",
    "Integral(3*x**2, x)",
    "Integral(3*x**2, (x, 0, 1))",
    "integrate(x**2, x)",
    "integrate(3*x**2, x)",
    "integrate(3*x**2)",
    "\\int x dx",
    "\\int 3x^2 dx",
    "\\int 3x^2\\,dx",
    "\\int_0^1 3x^2 dx",
    "\\displaystyle\\int 3 x^{2} \\, dx",
    "\\int\\int x\\,dx\\,dx",
    "Derivative(x**4/4, x)",
    "diff(x**3, x)",
    "diff(x**4/4, x)",
    "\\frac{d}{dx} \\frac{x^4}{4}",
    "d/dx x^4",
    "Sum(x, (x, 1, 10))",
    "summation(1/k**2, (k, 1, oo))",
    "\\sum_{k=1}^{\\infty} \\frac{1}{k^2}",
    "Limit(sin(x)/x, x, 0)",
    "limit(x**3, x, 1)",
    "\\lim_{x \\to 0} \\frac{\\sin x}{x}",
    "Product(k, (k, 1, 10))",
    "\\prod_{k=1}^{10} k",
    "Subs(x**3, x, 1)",
    "dsolve(f(x).diff(x) - 1)",
    "solve(x - 3, x)",
    "Integral(3*x**2, x).doit()",
    "x**3 + Integral(0, x)",
    "antiderivative(3*x**2)",
    "int(3*x**2)",
    "the integral of 3x^2",
    "F(x) where F'(x) = 3x^2",
    # unevaluated operators whose value is the math problem's answer, 2
    "Integral(x, (x, 0, 2))",
    "\\int_0^2 x\\,dx",
    "Sum(1, (k, 1, 2))",
    "\\sum_{k=1}^{2} 1",
    "Derivative(x**2, x).subs(x, 1)",
    "limit(2 + 1/x, x, oo)",
    "\\lim_{x\\to\\infty} (2 + \\frac{1}{x})",
]

STRAY_SYMBOLS = [
    "y",
    "C*z",
    "x**3 + y",
    "x**3*y",
    "x^3 + C*z",
    "a*x**3",
    "k",
    "t**3",
    "x**3 + c1 + c2*z",
    "f(x)",
    "g",
    "y(x)",
    "\\alpha x^3",
    "z**3",
    "X**3",
    "x_1**3",
    "xx",
    "x3",
    "x**3 + K*y",
    "x**3 + n",
    "C",
    "+ C",
    "+C",
    "C1",
    "constant",
    "u**3 where u = x",
]

UNICODE = [
    "\u0445**3",  # Cyrillic small ha, looks like x
    "\u0445^3",
    "\uff58**\uff14",  # fullwidth x ** fullwidth 4
    "\uff11\uff12\uff13",  # fullwidth 123
    "\u22123",  # U+2212 minus sign
    "x\u200d**4",  # zero-width joiner
    "x\u200b**4",  # zero-width space
    "\u202ex**4\u202c",  # right-to-left override
    "\u202e)'@MARKER@ hcuot'(metsys.)'so'(__tropmi__",  # reversed code behind an RTL override
    "\U0001d465**4",  # mathematical italic x
    "\u2179**4",  # small roman numeral ten, looks like x
    "x\u2074",  # superscript four
    "\u00bd",
    "\u221e",
    "\u03c0^\u03c0^\u03c0^\u03c0",
    "\ufeffx**4",  # byte-order mark
    "x\u0301**4",  # combining acute accent
    "\u212f^x",  # script e
    "\U0001d7d1",  # mathematical bold digit three
    "\u0663",  # Arabic-Indic digit three
    "\u06f3",  # extended Arabic-Indic digit three
    "x\u2028+1",  # line separator
    "x\u00a0+\u00a01",  # no-break spaces
    "\u0455in(x)",  # Cyrillic dze, looks like s
    "s\u0456n(x)",  # Ukrainian i
    "\u0435\u0445\u0440(x)",  # Cyrillic e, ha, er: looks like exp
    "\u0399ntegral(x, x)",  # Greek capital iota
    "\U0001f4a9",
    "\ud800x",  # a lone surrogate
    "\x00",
    "x\x00+1",
    "\x00__import__('os').system('touch @MARKER@')",
    "\x1b[2J\x1b[H",  # terminal escape codes
    "x\r\nimport os",
    "\u00e9\u0301\u0301\u0301\u0301\u0301",  # stacked combining marks
]

EMPTY_AND_JUNK = [
    "",
    " ",
    "\n",
    "\t\t",
    "{}",
    "()",
    "[]",
    "\\boxed{}",
    "$$",
    "$",
    "\\(\\)",
    "None",
    "null",
    "undefined",
    "N/A",
    "...",
    "?",
    "I don't know",
    "the answer is",
    "x =",
    "= x",
    "==",
    "+",
    "-",
    "*",
    "/",
    "^",
    "**",
    "!",
    ")(",
    "((((",
    "))))",
    "1 +* 3",
    "3 3 3",
    "True",
    "[1, 3]",
    "{'a': 1}",
    "b'\\x00'",
    "0x18",
    "0b11000",
    "1_000",
    "3j",
    "1.5.5",
    "--3",
]

# Built, not written out: the deep and the huge.
DEEP_AND_HUGE = [
    "(" * 10_000 + "x" + ")" * 10_000,
    "sin(" * 10_000 + "x" + ")" * 10_000,
    "exp(" * 10_000 + "x" + ")" * 10_000,
    "f(" * 10_000 + "x" + ")" * 10_000,
    "-" * 10_000 + "x",
    "+" * 10_000 + "3",
    "{" * 10_000 + "x" + "}" * 10_000,
    "[" * 10_000 + "x" + "]" * 10_000,
    "\\frac{1}{" * 3_000 + "x" + "}" * 3_000,
    # evalf of nested unevaluated fractions takes time exponential in the depth
    "\\frac{" * 20 + "1" + "}{2}" * 20,
    "\\frac{" * 20 + "x" + "}{2}" * 20,
    "\\frac{" * 38 + "3" + "}{3}" * 38,
    "\\sqrt{" * 10_000 + "x" + "}" * 10_000,
    "1/(1+" * 5_000 + "x" + ")" * 5_000,
    "x" + "**x" * 10_000,
    "x+" * (MB // 2) + "x",
    "9" * MB,
    "1" * MB + "!",
    "x" * MB,
    " " * MB + "x",
    "\\int " * (MB // 5),
    "(" * MB,
    "{" * MB,
    "\\frac{1}{3}" * (MB // 11),
    "0." + "0" * MB + "3",
    "1e" + "9" * MB,
    "x*" * (MB // 2) + "x",
    "sin(x)+" * (MB // 7),
]

CORPUS: list[str] = (
    CODE_INJECTION + LATEX_MACROS + EXPONENT_BOMBS + FACTORIAL_BOMBS + NON_FINITE + UNEVALUATED
    + STRAY_SYMBOLS + UNICODE + EMPTY_AND_JUNK + DEEP_AND_HUGE
)


def label(entry: str) -> str:
    """A short readable name for an entry (for test ids and failure messages)."""
    text = entry if len(entry) <= 60 else f"{entry[:40]}...({len(entry)} chars)"
    return ascii(text)


def completions(marker: str) -> list[tuple[str, str]]:
    """(label, completion text) for every entry tagged, then every third bare, then every third boxed.

    Grouped by wrapping, so that entries of one kind (the slow ones are together) sit side by side.
    """
    entries = [(entry, entry.replace(MARKER, marker)) for entry in CORPUS]
    out = [(f"answer:{label(e)}", f"<answer>{s}</answer>") for e, s in entries]
    out += [(f"raw:{label(e)}", s) for e, s in entries[0::3]]
    out += [(f"boxed:{label(e)}", f"The answer is \\boxed{{{s}}}.") for e, s in entries[1::3]]
    return out
