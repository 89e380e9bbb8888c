"""Budget forcing (s1, Muennighoff et al. 2025): control how long a thinking model thinks.

Thinking models end their reasoning with a delimiter ("</think>") and then answer. Budget forcing
edits that boundary from outside the model, in rounds of `policy.generate`:

- extend: when the model tries to stop thinking (it emits the delimiter) before it has been
  pushed `waits` times, the delimiter is dropped and "Wait" is appended, and it thinks on;
- cut: when the thinking budget (`think_tokens`) runs out, the delimiter is appended for it;
- then it is given `answer_tokens` more tokens to write the answer.

Each round's prompt is the original prompt plus everything generated so far, so this needs a
policy that continues its prompt verbatim. The contract, checked before the first call:

- a policy with a `format_prompt(prompt) -> str` (the chat template) and a boolean attribute
  `raw_prompts`: the first prompt is formatted once here, and every round runs with
  `raw_prompts = True` so that the policy does not wrap the continued text in a new chat turn;
- a policy whose `format_prompt` is the identity (a model without a chat template), or that has
  none and no chat `endpoint` (an OpenAI-compatible *completions* endpoint given prompts already
  in the model's chat format): used as it is;
- anything else (an OpenAI *chat* endpoint, a templated policy without `raw_prompts`) would see
  each round as a new question, and is refused with a `UserError`.

The tiny model does not think and gains nothing from this.

The final `Completion` is the whole continuation (thinking, "Wait"s, delimiter, answer); its
`token_ids` / `logprobs` are those the model generated (the inserted words are not among them),
so `num_tokens` is the compute actually spent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rungs.errors import UserError
from rungs.policies.base import Policy, SamplingParams, raw_prompts
from rungs.strategies.base import Sampler, spec_args
from rungs.types import Completion


@dataclass
class _Trace:
    """The state of one sample across rounds."""

    text: str = ""
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] | None = field(default_factory=list)
    think_tokens: int = 0
    waits: int = 0
    thinking: bool = True
    finish_reason: str = "stop"

    def add(self, c: Completion) -> int:
        """Append one round's completion; returns the tokens it cost."""
        self.text += c.text
        self.token_ids.extend(c.token_ids)
        if self.logprobs is not None and c.logprobs is not None:
            self.logprobs.extend(c.logprobs)
        elif c.text:  # a round without log-probs: the concatenation would be misaligned
            self.logprobs = None
        self.finish_reason = c.finish_reason
        # Policies that return no token ids (some servers) are charged ~4 characters a token.
        return c.num_tokens or (max(1, len(c.text) // 4) if c.text else 0)


class BudgetForcing(Sampler):
    """`budget_forcing`, `budget_forcing:WAITS` or `budget_forcing:WAITS:THINK_TOKENS`.

    waits: how many times a premature end of thinking is replaced by `wait_word` (s1 reports
        gains up to ~2-4). think_tokens: the thinking budget (default: the run's max_new_tokens).
    answer_tokens: tokens allowed after the delimiter. end_think / wait_word: the model's
        end-of-thinking delimiter and the extension word.
    """

    name = "budget_forcing"

    def __init__(self, waits: int = 1, think_tokens: int | None = None, answer_tokens: int = 256,
                 end_think: str = "</think>", wait_word: str = "Wait") -> None:
        if waits < 0:
            raise UserError(f"budget_forcing: waits must be >= 0, got {waits}")
        if think_tokens is not None and think_tokens < 1:
            raise UserError(f"budget_forcing: think_tokens must be >= 1, got {think_tokens}")
        if answer_tokens < 1:
            raise UserError(f"budget_forcing: answer_tokens must be >= 1, got {answer_tokens}")
        if not end_think:
            raise UserError("budget_forcing: end_think (the end-of-thinking delimiter) must not be empty")
        self.waits = waits
        self.think_tokens = think_tokens
        self.answer_tokens = answer_tokens
        self.end_think = end_think
        self.wait_word = wait_word

    @classmethod
    def from_spec(cls, arg: str | None = None) -> BudgetForcing:
        if not arg:
            return cls()
        waits, think = spec_args(arg, int, int, None, f"budget_forcing:{arg}: expected budget_forcing:WAITS or "
                                 f"budget_forcing:WAITS:THINK_TOKENS, e.g. budget_forcing:2:4096")
        return cls(waits, think)

    @property
    def label(self) -> str:
        budget = f",{self.think_tokens}" if self.think_tokens else ""
        return f"bf({self.waits}{budget})"

    @property
    def prefix(self) -> str:  # type: ignore[override]
        return self.label

    def generate(self, policy: Policy, prompts: Sequence[str], n: int, base: SamplingParams) -> list[list[Completion]]:
        prompts, raw = continuable_prompts(policy, prompts)
        with raw_prompts(policy, on=raw):
            return self._rounds(policy, prompts, n, base)

    def _rounds(self, policy: Policy, prompts: Sequence[str], n: int, base: SamplingParams) -> list[list[Completion]]:
        budget = self.think_tokens or base.max_new_tokens
        traces = [[_Trace() for _ in range(n)] for _ in prompts]
        think_stop = tuple(dict.fromkeys((*base.stop, self.end_think)))
        first = base.with_(stop=think_stop, max_new_tokens=budget)
        for row, outs in zip(traces, policy.generate(list(prompts), n, first)):
            for trace, c in zip(row, outs):
                trace.think_tokens += trace.add(c)
                self._after_thinking_round(trace, c, budget)
        round_ = 0
        while True:
            live = [(p, t) for p, row in enumerate(traces) for t in row if t.thinking]
            if not live:
                break
            round_ += 1
            # One continuation per live sample, batched by remaining budget (max_new_tokens is per call).
            by_budget: dict[int, list[tuple[int, _Trace]]] = {}
            for p, t in live:
                by_budget.setdefault(budget - t.think_tokens, []).append((p, t))
            for remaining, group in sorted(by_budget.items()):
                sampling = base.with_(stop=think_stop, max_new_tokens=remaining, seed=_round_seed(base.seed, round_),
                                      first_token_temperature=None, first_token_top_k=None)
                outs = policy.generate([prompts[p] + t.text for p, t in group], 1, sampling)
                for (_, t), (c, *_) in zip(group, outs):
                    t.think_tokens += t.add(c)
                    self._after_thinking_round(t, c, budget)
        # The answer round: everything is past the delimiter now.
        pending = [(p, t) for p, row in enumerate(traces) for t in row]
        if pending:
            sampling = base.with_(max_new_tokens=self.answer_tokens, seed=_round_seed(base.seed, round_ + 1),
                                  first_token_temperature=None, first_token_top_k=None)
            outs = policy.generate([prompts[p] + t.text for p, t in pending], 1, sampling)
            for (_, t), (c, *_) in zip(pending, outs):
                t.add(c)
        return [[Completion(t.text, t.token_ids, t.logprobs if t.token_ids else None,
                            "length" if t.finish_reason == "length" else "stop") for t in row] for row in traces]

    def _after_thinking_round(self, t: _Trace, c: Completion, budget: int) -> None:
        """Decide what follows a thinking round: more thinking after "Wait", or the delimiter."""
        # Policies differ on whether a matched stop string stays in the text; take it off.
        ended = c.finish_reason != "length"
        if t.text.endswith(self.end_think):
            t.text = t.text[: -len(self.end_think)]
            ended = True
        if ended and t.waits < self.waits and t.think_tokens < budget:
            t.text += self.wait_word  # s1: suppress the end of thinking and make it reconsider
            t.waits += 1
            return
        # Out of budget, out of waits, or done thinking: close the thinking block (cut it off if needed).
        t.text += self.end_think
        t.thinking = False


def continuable_prompts(policy: Policy, prompts: Sequence[str]) -> tuple[list[str], bool]:
    """The prompts as the text the model continues, and whether the policy must be switched to
    `raw_prompts` for that; a `UserError` for a policy that cannot continue text (module doc)."""
    name = getattr(policy, "name", type(policy).__name__)
    if getattr(policy, "endpoint", None) == "chat":
        raise UserError(f"budget_forcing: policy {name} uses a chat endpoint, which cannot continue the model's own "
                        f"text; serve the model with a completions endpoint (endpoint='completions')")
    fmt = getattr(policy, "format_prompt", None)
    if fmt is None:
        return list(prompts), False
    if hasattr(policy, "raw_prompts"):
        return [fmt(p) for p in prompts], True
    probe = "budget forcing probe"
    if fmt(probe) != probe:
        raise UserError(f"budget_forcing: policy {name} wraps every prompt in its chat template and has no "
                        f"raw_prompts mode to continue text with")
    return list(prompts), False


def _round_seed(seed: int | None, round_: int) -> int | None:
    """A different seed per round, so that a seeded policy does not replay the same random stream."""
    return None if seed is None else seed + 7919 * round_
