"""A character-level tokenizer for the embedded tiny model.

Why characters: the tasks' problems and answers are short formulas over a small alphabet
(`Task.alphabet`), so one token per character keeps the vocabulary at ~100 entries, needs no
trained merges, and never splits an answer in a way the model has to learn around.

The vocabulary is the special tokens, then every printable ASCII character, then any extra
characters of the given alphabets (non-ASCII symbols a task may use). Printable ASCII is always
included so that one checkpoint can be fine-tuned on another task without growing its vocabulary.
`<answer>` and `</answer>` are single tokens (the model learns one decision per marker, and the
task's `extract_answer` still finds the decoded text). Anything else maps to `<unk>`: hostile
prompts never crash the tokenizer.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterable, Sequence
from pathlib import Path

from rungs.errors import UserError
from rungs.verify.extract import ANSWER_CLOSE, ANSWER_OPEN

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK, ANSWER_OPEN, ANSWER_CLOSE)
# Specials that are spelled out in text: "<answer>" in a string is encoded as the one marker token.
TEXT_MARKERS = (ANSWER_OPEN, ANSWER_CLOSE)
BASE_CHARS = "".join(ch for ch in string.printable if ch not in "\t\n\r\x0b\x0c") + "\n"
FILE_NAME = "tokenizer.json"


class CharTokenizer:
    """Characters <-> ids. ids 0..5 are <pad>, <bos>, <eos>, <unk>, <answer>, </answer>."""

    def __init__(self, chars: str) -> None:
        seen: dict[str, None] = {}
        for ch in chars:
            seen.setdefault(ch, None)
        self.chars = "".join(seen)
        self.pieces: list[str] = [*SPECIALS, *self.chars]
        self._ids = {piece: i for i, piece in enumerate(self.pieces)}
        self.pad_id, self.bos_id, self.eos_id, self.unk_id = (self._ids[t] for t in (PAD, BOS, EOS, UNK))
        self.answer_open_id, self.answer_close_id = self._ids[ANSWER_OPEN], self._ids[ANSWER_CLOSE]
        # What each id decodes to: control tokens decode to nothing, <unk> to the replacement char.
        self._text = [p if p in TEXT_MARKERS or p in self.chars else "" for p in self.pieces]
        self._text[self.unk_id] = "\ufffd"

    @classmethod
    def build(cls, alphabets: Iterable[str] = ()) -> CharTokenizer:
        """Printable ASCII plus the extra characters of the given task alphabets."""
        extra = sorted({ch for alphabet in alphabets for ch in alphabet} - set(BASE_CHARS))
        return cls(BASE_CHARS + "".join(extra))

    @property
    def vocab_size(self) -> int:
        return len(self.pieces)

    def encode(self, text: str) -> list[int]:
        """Text to ids; "<answer>" / "</answer>" become their marker tokens, unknowns <unk>."""
        ids: list[int] = []
        i, n = 0, len(text)
        get, unk = self._ids.get, self.unk_id
        while i < n:
            if text[i] == "<":
                marker = next((m for m in TEXT_MARKERS if text.startswith(m, i)), None)
                if marker is not None:
                    ids.append(self._ids[marker])
                    i += len(marker)
                    continue
            ids.append(get(text[i], unk))
            i += 1
        return ids

    def piece_text(self, token_id: int) -> str:
        """The text one id decodes to ("" for <pad>, <bos>, <eos> and out-of-range ids)."""
        return self._text[token_id] if 0 <= token_id < len(self._text) else ""

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.piece_text(int(i)) for i in ids)

    # -- persistence ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"type": "char", "version": 1, "specials": list(SPECIALS), "chars": self.chars}

    def save(self, directory: str | Path) -> None:
        from rungs.runs import atomic_write_json

        atomic_write_json(Path(directory) / FILE_NAME, self.to_dict())

    @classmethod
    def from_dict(cls, data: dict, source: str = FILE_NAME) -> CharTokenizer:
        if not isinstance(data, dict) or data.get("type") != "char" or not isinstance(data.get("chars"), str):
            raise UserError(f"{source}: not a rungs character tokenizer (expected type 'char' and a 'chars' string)")
        if list(data.get("specials", SPECIALS)) != list(SPECIALS):
            raise UserError(f"{source}: special tokens {data.get('specials')} differ from {list(SPECIALS)}")
        return cls(data["chars"])

    @classmethod
    def load(cls, directory: str | Path) -> CharTokenizer:
        path = Path(directory) / FILE_NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"{path}: no tokenizer file; expected a rungs tiny checkpoint directory") from None
        except json.JSONDecodeError as err:
            raise UserError(f"{path}: malformed JSON ({err})") from None
        return cls.from_dict(data, str(path))
