"""Rewards: every training signal behind one interface, in one registry (`REWARDS`).

    verifier        the task's verifier, sandboxed (RLVR; LADDER)
    format          LADDER's format term: exactly one non-empty <answer>...</answer>
    majority_vote   TTRL (Zuo et al. 2025): agreement with the majority answer; majority_vote:N votes on N
    self_certainty  INTUITOR (Zhao et al. 2025): mean KL(uniform || p) over the completion's tokens
    neg_entropy     entropy minimisation (Agarwal et al. 2025); neg_entropy:answer is RENT (answer tokens)
    random          control (Shao et al. 2025): Bernoulli(0.5); random:P
    format_only     control (Shao et al. 2025): 1 if an answer can be extracted
    admissible      partial credit: 1 if the verifier could check the answer (correct or wrong), TinyZero-style

A reward is one file: a `Reward` subclass with `score(batch) -> RewardOutput`, and a line here.
Several combine under TRL's names: `reward_funcs` ["verifier", "format"], `reward_weights`
[1.0, 0.1] (see `build_reward`). Entries are lazy "module:attr" strings, so listing them imports
nothing heavy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rungs.registry import Registry, split_spec

REWARDS: Registry[Any] = Registry("reward")  # name -> factory(context, arg) -> Reward
REWARDS.register("verifier", "rungs.rewards.verifier:VerifierReward.from_spec")
REWARDS.register("format", "rungs.rewards.format:FormatReward.from_spec")
REWARDS.register("majority_vote", "rungs.rewards.majority_vote:MajorityVoteReward.from_spec")
REWARDS.register("self_certainty", "rungs.rewards.self_certainty:SelfCertaintyReward.from_spec")
REWARDS.register("neg_entropy", "rungs.rewards.self_certainty:NegEntropyReward.from_spec")
REWARDS.register("random", "rungs.rewards.controls:RandomReward.from_spec")
REWARDS.register("format_only", "rungs.rewards.controls:FormatOnlyReward.from_spec")
REWARDS.register("admissible", "rungs.rewards.admissible:AdmissibleReward.from_spec")

DEFAULT_REWARD_FUNCS = ("verifier", "format")
# Rewards that never look at a label: safe on an unlabelled test set of any task.
LABEL_FREE = ("majority_vote", "self_certainty", "neg_entropy", "random", "format_only", "format")


def parse_reward_funcs(funcs: str | Sequence[str] | None) -> list[str]:
    """'verifier,format' or ["verifier", "format"] -> ["verifier", "format"]; None -> the default.
    Each name is checked against `REWARDS` (a UserError with 'did you mean')."""
    if funcs is None:
        items = list(DEFAULT_REWARD_FUNCS)
    elif isinstance(funcs, str):
        items = [s.strip() for s in funcs.split(",") if s.strip()]
    else:
        items = [str(s).strip() for s in funcs if str(s).strip()]
    if not items:
        from rungs.errors import UserError

        raise UserError("no reward named; expected e.g. verifier,format (see rungs.rewards.REWARDS)")
    for spec in items:
        name, _ = split_spec(spec)
        if name not in REWARDS:
            from rungs.errors import UserError

            raise UserError(REWARDS.unknown_message(name))
    return items


def check_reward_labels(funcs: Sequence[str], task: Any, problems: Sequence[Any], source: str) -> str | None:
    """Whether `problems` (of `task`, read from `source`) carry what the rewards `funcs` need.

    The `verifier` reward of a task that checks against a reference (`task.needs_answer`, e.g.
    math) scores 0 on a problem without an `answer`. When no problem has one and no other reward
    but the `format` shaping term is given, training would run on zero rewards: a UserError
    naming `source` and the label-free way (TTRL's `majority_vote`). When only some lack one,
    the returned line says how many (the caller prints it); None when nothing is missing."""
    names = [split_spec(f)[0] for f in funcs]
    if not getattr(task, "needs_answer", False) or "verifier" not in names:
        return None
    missing = sum(p.answer is None for p in problems)
    if not missing:
        return None
    if missing == len(problems) and set(names) <= {"verifier", "format"}:
        from rungs.errors import UserError

        raise UserError(f"{source}: no problem has an 'answer', and the verifier reward of task {task.name!r} "
                        "checks against one, so every reward would be 0: add answers, or train label-free "
                        "with --reward-funcs majority_vote,format (TTRL's pseudo-labels)")
    return (f"{source}: {missing} of {len(problems)} problems have no 'answer': the verifier reward is 0 on them "
            f"(task {task.name!r} checks against a reference)")


def default_weights(funcs: Sequence[str], format_reward_weight: float = 0.1) -> list[float]:
    """1 per reward, except `format`, which gets `format_reward_weight` (LADDER's small term)."""
    return [format_reward_weight if split_spec(f)[0] == "format" else 1.0 for f in funcs]


def build_reward(funcs: str | Sequence[str] | None, weights: Sequence[float] | str | None, context: Any,
                 format_reward_weight: float = 0.1) -> Any:
    """A `CombinedReward` of `funcs` (specs 'name' or 'name:arg') with `weights` (None: see
    `default_weights`). Metrics are named by each reward's name (`rewards/<name>/mean`)."""
    from rungs.rewards.base import CombinedReward, parse_weights

    specs = parse_reward_funcs(funcs)
    w = parse_weights(weights) if weights is not None else default_weights(specs, format_reward_weight)
    rewards = [REWARDS.get(split_spec(s)[0])(context, split_spec(s)[1]) for s in specs]
    return CombinedReward(rewards, w, names=[split_spec(s)[0] for s in specs])


__all__ = ["DEFAULT_REWARD_FUNCS", "LABEL_FREE", "REWARDS", "build_reward", "default_weights", "parse_reward_funcs"]
