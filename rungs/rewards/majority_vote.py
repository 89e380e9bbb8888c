"""`majority_vote`: TTRL's label-free reward (Zuo et al. 2025, "TTRL: Test-Time Reinforcement Learning").

For each prompt, N answers are voted on (the G samples being trained on, plus N - G more drawn
from the same policy with the same sampling settings: the paper votes on 64 and trains on 32);
answers are grouped by the task's answer equivalence (`Task.answer_key`, computed in the sandboxed
pool: for integration, two antiderivatives that differ by a constant are one answer). The majority
answer is the pseudo-label; a trained sample scores 1 when its answer equals it, else 0. A sample
with no usable answer never votes and scores 0. Ties go to the answer met first (the vote of
`rungs.strategies.majority`, the one majority vote of the package).

Where true correctness is known (the task verifies without labels, or the problem has an
answer), it logs, never rewards, what TTRL's users watch:
    ttrl/label_accuracy   is the majority answer right?            (per prompt)
    ttrl/reward_accuracy  does the pseudo-reward equal the true one? (per trained sample)
    ttrl/true_accuracy    the trained samples' true accuracy
and always ttrl/vote_agreement: the majority answer's share of the votes (a label-free signal of
collapse: it goes to 1 when every sample says the same thing).

Spec: `majority_vote` votes on the G trained samples only; `majority_vote:N` on N >= G.
"""

from __future__ import annotations

import torch

from rungs.errors import UserError
from rungs.rewards.base import Reward, RewardBatch, RewardContext, RewardOutput
from rungs.strategies.base import Sample
from rungs.strategies.majority import vote
from rungs.types import Completion, Problem, Status, Verdict


class MajorityVoteReward(Reward):
    """1 when the sample's answer is the group's majority answer (see the module docstring)."""

    name = "majority_vote"

    def __init__(self, context: RewardContext, vote_samples: int | None = None) -> None:
        super().__init__(context)
        self.vote_samples = vote_samples

    @classmethod
    def from_spec(cls, context: RewardContext, arg: str | None = None) -> MajorityVoteReward:
        if not arg:
            return cls(context)
        try:
            n = int(arg)
        except ValueError:
            n = 0
        if n < 2:
            raise UserError(f"reward majority_vote:{arg}: expected majority_vote or majority_vote:N with N >= 2 votes per prompt")
        return cls(context, n)

    def _extra(self, problems: list[Problem], k: int, seed: int) -> list[list[Completion]]:
        """k more samples per problem, from the policy being trained, at the rollouts' settings."""
        if k <= 0:
            return [[] for _ in problems]
        policy = self.context.need_policy(self.name)
        sampling = self.context.sampling
        if sampling is None:
            raise UserError("reward 'majority_vote' with extra votes needs the rollouts' sampling settings")
        prompts = [self.context.task.prompt(p, policy.prompt_style) for p in problems]
        policy.eval()  # safe: nn.Module/Policy.eval(), inference mode; not Python's eval
        with torch.no_grad():
            return policy.generate(prompts, n=k, sampling=sampling.with_(seed=seed))

    def _known(self, problem: Problem) -> bool:
        return not self.context.task.needs_answer or problem.answer is not None

    def score(self, batch: RewardBatch) -> RewardOutput:
        task, pool = self.context.task, self.context.get_pool()
        groups = batch.groups()
        heads = [batch.problems[g[0]] for g in groups]
        extra = self._extra(heads, (self.vote_samples or 0) - batch.num_generations, batch.seed)
        own_keys = pool.answer_keys(batch.problems, [task.extract_answer(c.text) for c in batch.completions])
        more_problems = [p for p, group in zip(heads, extra) for _ in group]
        more = [c for group in extra for c in group]
        more_keys = pool.answer_keys(more_problems, [task.extract_answer(c.text) for c in more]) if more else []
        known_rows = [i for i, p in enumerate(more_problems) if self._known(p)]
        more_verdicts = [Verdict.fail(Status.UNLABELLED, "not verified")] * len(more)
        if known_rows:
            for i, v in zip(known_rows, pool.verify([more_problems[i] for i in known_rows], [more[i].text for i in known_rows])):
                more_verdicts[i] = v

        rewards = torch.zeros(len(batch), dtype=torch.float32)  # [B]
        label_hits = reward_hits = labelled = rows_known = 0
        agreement = []
        cursor = 0
        for rows, head, group_extra in zip(groups, heads, extra):
            votes = [Sample(batch.completions[i].text, batch.verdicts[i], own_keys[i]) for i in rows]
            votes += [Sample(c.text, more_verdicts[cursor + j], more_keys[cursor + j]) for j, c in enumerate(group_extra)]
            cursor += len(group_extra)
            choice = vote(votes)
            majority = votes[choice.index].key if choice.index is not None else None
            voters = [s for s in votes if s.key is not None]
            agreement.append(sum(s.key == majority for s in voters) / len(votes) if majority is not None else 0.0)
            # a reference the task cannot read (an unlabelled verdict) is no label either
            known = self._known(head) and all(batch.verdicts[i].status is not Status.UNLABELLED for i in rows)
            if known:
                labelled += 1
                label_hits += int(choice.index is not None and votes[choice.index].correct)
            for i in rows:
                pseudo = majority is not None and own_keys[i] == majority
                rewards[i] = 1.0 if pseudo else 0.0
                if known:
                    rows_known += 1
                    reward_hits += int(pseudo == batch.verdicts[i].correct)
        metrics = {"ttrl/vote_agreement": sum(agreement) / max(len(agreement), 1),
                   # the extra vote samples are compute too: tokens/generated counts the trained ones only
                   "tokens/vote": float(sum(len(c.token_ids) for c in more))}
        if labelled:
            known_rows_own = [i for i, p in enumerate(batch.problems)
                              if self._known(p) and batch.verdicts[i].status is not Status.UNLABELLED]
            metrics.update({
                "ttrl/label_accuracy": label_hits / labelled,
                "ttrl/reward_accuracy": reward_hits / max(1, rows_known),
                "ttrl/true_accuracy": sum(batch.verdicts[i].correct for i in known_rows_own) / max(1, len(known_rows_own)),
            })
        return RewardOutput(rewards, metrics)
