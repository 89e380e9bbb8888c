"""Find the answer in a completion: the last <answer>...</answer> or \\boxed{...}.

Parsers are kept apart from scoring (as in `verifiers`): these functions only cut text out,
they never judge it. All are linear scans with no backtracking regexes, so a megabyte of
hostile text costs milliseconds.

One rule for every wrapper, in every task: if the last answer wrapper the completion opens
(`<answer>`, `\\boxed{`, `\\fbox{`) is never closed, the completion was cut off while writing its
final answer, and it has no answer. An earlier, complete answer is not resurrected: the model
had moved on from it (`<answer>12</answer> wait, it is <answer>1` has no answer, like
`\\boxed{12} wait, \\boxed{1`).

`\\boxed` also works without braces, as in LaTeX: `\\boxed 2` boxes the token that follows (here
the run of characters up to a space, `$`, `\\)` or `\\]`, so `\\boxed 12` is 12, not 1).

TRL's `reasoning_accuracy_reward` semantics are `after_reasoning`: only the text after the end
of the reasoning (`</think>`) may hold the answer, and unfinished reasoning has none.
"""

from __future__ import annotations

from collections.abc import Sequence

ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
BOXED_COMMANDS = ("\\boxed", "\\fbox")
BOXED_MARKERS = ("\\boxed{", "\\fbox{")  # the braced forms, for callers that look for them
# TRL's default end-of-reasoning delimiter (trl.rewards.reasoning_accuracy_reward).
THINK_DELIMITERS = ("</think>",)
_TOKEN_STOP = frozenset(" \t\r\n$")
_TRAILING_PUNCTUATION = ".,;:!?"


def last_tag(text: str, open_tag: str = ANSWER_OPEN, close_tag: str = ANSWER_CLOSE) -> str | None:
    """Content of the last opened <answer>...</answer>; None when there is none or it never closes."""
    start = text.rfind(open_tag)
    if start < 0:
        return None
    end = text.find(close_tag, start + len(open_tag))
    if end < 0:
        return None
    return text[start + len(open_tag) : end]


def _last_box_command(text: str) -> tuple[int, int]:
    """(position, length) of the last `\\boxed` / `\\fbox` command (not `\\boxedx`); (-1, 0) if none."""
    best, length = -1, 0
    for command in BOXED_COMMANDS:
        pos = len(text)
        while True:
            pos = text.rfind(command, 0, pos)
            if pos < 0 or pos <= best:
                break
            after = pos + len(command)
            if after >= len(text) or not text[after].isalpha():
                best, length = pos, len(command)
                break
    return best, length


def _box_content(text: str, after: int) -> str | None:
    """The content of a box whose command ends at `after`; None when it is cut off (unclosed)."""
    i, n = after, len(text)
    while i < n and text[i] in " \t":
        i += 1
    if i >= n:
        return None  # `\boxed` at the very end: truncated
    if text[i] == "{":
        depth, start = 1, i + 1
        for j in range(start, n):
            ch = text[j]
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    return text[start:j]
        return None
    # \boxed 2: the token that follows, up to a space, `$`, `\)`, `\]` or an unmatched `}`.
    start, depth, j = i, 0, i
    while j < n:
        ch = text[j]
        if depth == 0 and (ch in _TOKEN_STOP or text.startswith(("\\)", "\\]"), j)):
            break
        if ch == "{":
            depth += 1
        elif ch == "}":
            if depth == 0:
                break
            depth -= 1
        j += 1
    return text[start:j].rstrip(_TRAILING_PUNCTUATION)


def last_boxed(text: str) -> str | None:
    """Content of the last \\boxed{...} (braces balanced) or `\\boxed 2`; None if none or unclosed."""
    pos, length = _last_box_command(text)
    if pos < 0:
        return None
    return _box_content(text, pos + length)


def brace_boxes(text: str) -> str:
    """Rewrite every brace-less box as a braced one: `\\boxed 2` -> `\\boxed{2}` (for parsers that need braces)."""
    if "\\boxed" not in text and "\\fbox" not in text:
        return text
    out, i, n = [], 0, len(text)
    upcoming = {c: text.find(c) for c in BOXED_COMMANDS}  # next occurrence of each command (linear overall)
    while i < n:
        for c, p in upcoming.items():
            if 0 <= p < i:
                upcoming[c] = text.find(c, i)
        found = [(p, c) for c, p in upcoming.items() if p >= 0]
        if not found:
            break
        pos, command = min(found)
        after = pos + len(command)
        j = after
        while j < n and text[j] in " \t":
            j += 1
        if j >= n or text[j] == "{" or (j == after and text[j].isalpha()):
            out.append(text[i:after])  # braced, cut off, or another command (`\\boxedx`)
            i = after
            continue
        content = _box_content(text, after) or ""
        end = j + len(content)
        out.append(f"{text[i:pos]}{command}{{{content}}}")
        i = end
    out.append(text[i:])
    return "".join(out)


def after_reasoning(text: str, delimiters: Sequence[str] = THINK_DELIMITERS) -> str | None:
    """The text after the reasoning, as TRL's `reasoning_accuracy_reward` cuts it; None if unfinished.

    The first delimiter (in the order given) that occurs in `text` ends the reasoning; the final
    answer is looked for after its last occurrence. No delimiter at all means the reasoning never
    finished (a `<think>` cut off by the token limit): there is no answer, and it scores 0.
    """
    for delimiter in delimiters:
        if delimiter and delimiter in text:
            return text.rsplit(delimiter, 1)[1]
    return None


def strip_math_delimiters(answer: str) -> str:
    """`$x$`, `$$x$$`, `\\(x\\)`, `\\[x\\]` -> `x`; an escaped `\\$` (a currency sign) is not a delimiter."""
    for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if len(answer) >= len(left) + len(right) and answer.startswith(left) and answer.endswith(right):
            if right.startswith("$") and answer[: len(answer) - len(right)].endswith("\\"):
                continue  # `$12\$`: the last dollar is a currency sign, not the closing delimiter
            return answer[len(left) : len(answer) - len(right)].strip()
    return answer


def cut_off(text: str) -> bool:
    """Whether the last answer wrapper `text` opens never closes (the rule of the module docstring)."""
    if not isinstance(text, str):
        return False
    box_pos, box_len = _last_box_command(text)
    tag_start = text.rfind(ANSWER_OPEN)
    tag_end = text.find(ANSWER_CLOSE, tag_start + len(ANSWER_OPEN)) if tag_start >= 0 else -1
    if tag_start >= 0 and tag_end < 0:
        return True
    return box_pos >= 0 and box_pos > tag_end and _box_content(text, box_pos + box_len) is None


def extract_answer(text: str) -> str | None:
    """The last tagged answer, else the last boxed answer; stripped; None when there is none.

    A \\boxed{} inside the <answer> tag is unwrapped. None too when the last answer wrapper the
    text opens is never closed (see the module docstring): a cut-off final answer is no answer.
    """
    if not isinstance(text, str):
        return None
    box_pos, box_len = _last_box_command(text)
    tag_start = text.rfind(ANSWER_OPEN)
    if tag_start >= 0:
        tag_end = text.find(ANSWER_CLOSE, tag_start + len(ANSWER_OPEN))
        if tag_end < 0:
            return None  # the last <answer> never closes
        if box_pos > tag_end and _box_content(text, box_pos + box_len) is None:
            return None  # a box opened after the last tag never closes
        answer: str | None = text[tag_start + len(ANSWER_OPEN) : tag_end]
        pos, length = _last_box_command(answer)
        if pos >= 0:  # a box inside the tag is unwrapped; a box cut off inside it is no answer
            answer = _box_content(answer, pos + length)
    elif box_pos >= 0:
        answer = _box_content(text, box_pos + box_len)
    else:
        answer = None
    if answer is None:
        return None
    # A display-math wrapper around the whole answer carries no meaning.
    answer = strip_math_delimiters(answer.strip())
    return answer or None
