"""Find the answer in a completion: the last <answer>...</answer> or \\boxed{...}.

Parsers are kept apart from scoring (as in `verifiers`): these functions only cut text out,
they never judge it. Both are linear scans with no backtracking regexes, so a megabyte of
hostile text costs milliseconds.
"""

from __future__ import annotations

ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
BOXED_MARKERS = ("\\boxed{", "\\fbox{")


def last_tag(text: str, open_tag: str = ANSWER_OPEN, close_tag: str = ANSWER_CLOSE) -> str | None:
    """Content of the last complete <answer>...</answer>, or None."""
    end = text.rfind(close_tag)
    if end < 0:
        return None
    start = text.rfind(open_tag, 0, end)
    if start < 0:
        return None
    return text[start + len(open_tag) : end]


def last_boxed(text: str) -> str | None:
    """Content of the last \\boxed{...} with balanced braces, or None."""
    best = -1
    marker_len = 0
    for marker in BOXED_MARKERS:
        pos = text.rfind(marker)
        if pos > best:
            best, marker_len = pos, len(marker)
    if best < 0:
        return None
    depth, i = 1, best + marker_len
    start = i
    while i < len(text):
        ch = text[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start:i]
        i += 1
    return None


def extract_answer(text: str) -> str | None:
    """The last tagged answer, else the last boxed answer; stripped; None when there is none.

    A \\boxed{} inside the <answer> tag is unwrapped.
    """
    if not isinstance(text, str):
        return None
    answer = last_tag(text)
    if answer is not None:
        inner = last_boxed(answer)
        answer = inner if inner is not None else answer
    else:
        answer = last_boxed(text)
    if answer is None:
        return None
    answer = answer.strip()
    # A display-math wrapper around the whole answer carries no meaning.
    for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if len(answer) >= len(left) + len(right) and answer.startswith(left) and answer.endswith(right):
            answer = answer[len(left) : len(answer) - len(right)].strip()
            break
    return answer or None
