"""Rewards as components: each reward against a hand-computed example, weights as documented,
GSPO's sequence ratio, bnpo, RLOO advantages, and the early stop on a scripted collapse."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

from rungs.policies.base import Policy, SamplingParams, TokenStats
from rungs.rewards import REWARDS, build_reward, default_weights, parse_reward_funcs
from rungs.rewards.base import CombinedReward, Reward, RewardBatch, RewardContext, RewardOutput
from rungs.rewards.self_certainty import answer_token_mask
from rungs.tasks import get_task
from rungs.train.grpo_config import GRPOConfig
from rungs.train.grpo_loss import grpo_loss
from rungs.train.rloo import rloo_advantages
from rungs.types import Completion, Problem, Status, Verdict

sys.path.insert(0, str(Path(__file__).resolve().parent))


def batch(texts, verdicts=None, G=None, ids=None, seed=0):
    n = len(texts)
    verdicts = verdicts or [Verdict.fail(Status.WRONG)] * n
    comps = [Completion(t, list(ids[i]) if ids else []) for i, t in enumerate(texts)]
    return RewardBatch([Problem(f"p{i // (G or n)}", "q") for i in range(n)], comps, verdicts, [[1]] * n, G or n, seed)


@pytest.fixture(scope="module")
def countdown():
    return get_task("countdown")


def test_registry_lists_every_reward_and_suggests_on_a_typo():
    assert set(REWARDS.names()) == {"verifier", "format", "majority_vote", "self_certainty", "neg_entropy",
                                    "random", "format_only", "admissible"}
    with pytest.raises(Exception, match="did you mean 'format_only'"):
        parse_reward_funcs("format_olny")


def test_the_reward_flag_help_names_every_registered_reward():
    import dataclasses
    import re

    help_text = next(f for f in dataclasses.fields(GRPOConfig) if f.name == "reward_funcs").metadata["help"]
    listed = {re.sub(r"\[.*", "", item.strip()) for item in help_text.split(":", 1)[1].split(",")}
    assert listed == set(REWARDS.names())


def test_format_only_and_format(countdown):
    ctx = RewardContext(countdown)
    texts = ["<answer>3</answer>", "so \\boxed{4}", "no answer", "<answer>1</answer><answer>2</answer>"]
    only = REWARDS.get("format_only")(ctx, None).score(batch(texts))
    assert only.rewards.tolist() == [1.0, 1.0, 0.0, 1.0]
    fmt = REWARDS.get("format")(ctx, None).score(batch(texts))
    assert fmt.rewards.tolist() == [1.0, 0.0, 0.0, 0.0]


def test_admissible_pays_checked_answers_and_voids_failed_checks(countdown):

    problem = Problem("c", "numbers: 3 4 5; target: 35")
    texts = ["<answer>(3 + 4) * 5</answer>",  # correct
             "<answer>3 + 4 + 5</answer>",  # wrong value, numbers as given: admissible
             "<answer>3 * 4 * 4</answer>",  # a number not given (4 twice, 5 unused): rejected
             "<answer>3 +* 4</answer>",  # unparseable
             "no answer at all"]
    verdicts = [countdown.verify(problem, t) for t in texts] + [Verdict.fail(Status.TIMEOUT),
                                                                 Verdict.fail(Status.UNLABELLED)]
    assert [str(v.status) for v in verdicts] == ["correct", "wrong", "rejected", "unparseable", "no_answer", "timeout",
                                                 "unlabelled"]
    out = REWARDS.get("admissible")(RewardContext(countdown), None).score(batch([*texts, "slow", "no label"], verdicts))
    assert out.rewards.tolist() == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert out.void.tolist() == [False] * 5 + [True, True]  # a failed check, and no reference to check against
    verdicts = verdicts[:-1]  # the first six, below
    # combined under TRL's weights, a wrong-but-admissible answer earns its weight, a right one more,
    # and it is signal (not shaping): DAPO's filter sees the admissibility variance
    combined = build_reward(["verifier", "admissible"], [1.0, 0.2], RewardContext(countdown))
    scored = combined.score(batch([*texts, "slow"], verdicts))
    assert scored.rewards.tolist() == pytest.approx([1.2, 0.2, 0.0, 0.0, 0.0, 0.0])
    assert scored.signal.tolist() == pytest.approx([1.2, 0.2, 0.0, 0.0, 0.0, 0.0])


def test_random_is_bernoulli_and_seeded(countdown):
    r = REWARDS.get("random")(RewardContext(countdown), None)
    a = r.score(batch(["x"] * 64, seed=5)).rewards
    assert set(a.tolist()) <= {0.0, 1.0} and 0 < a.sum() < 64
    assert torch.equal(a, r.score(batch(["y"] * 64, seed=5)).rewards)  # the seed, not the text, decides
    assert not torch.equal(a, r.score(batch(["x"] * 64, seed=6)).rewards)
    always = REWARDS.get("random")(RewardContext(countdown), "1").score(batch(["x"] * 8)).rewards
    assert always.tolist() == [1.0] * 8


def test_weights_combine_as_documented_and_void_rows_get_nothing(countdown):
    ctx = RewardContext(countdown)
    ok, wrong, hung = Verdict(1.0, Status.CORRECT), Verdict.fail(Status.WRONG), Verdict.fail(Status.TIMEOUT)
    texts = ["<answer>1</answer>", "<answer>2</answer>", "<answer>3</answer>", "none"]
    b = batch(texts, [ok, wrong, hung, wrong])
    assert default_weights(["verifier", "format"], 0.1) == [1.0, 0.1]
    out = build_reward("verifier,format", None, ctx, format_reward_weight=0.1).score(b)
    assert out.rewards.tolist() == pytest.approx([1.1, 0.1, 0.0, 0.0])  # a timed-out rollout: no format term either
    assert out.metrics["rewards/verifier/mean"] == pytest.approx(0.25)  # unweighted, as TRL logs them
    assert out.metrics["rewards/format/mean"] == pytest.approx(0.75)
    assert out.metrics["rewards/format/std"] == pytest.approx(0.5)
    out = build_reward(["verifier", "format_only"], "2,0.5", ctx).score(b)
    assert out.rewards.tolist() == pytest.approx([2.5, 0.5, 0.0, 0.0])


def test_a_reward_that_raises_scores_zero_and_is_logged(countdown, caplog):
    class Broken(Reward):
        name = "broken"

        def score(self, batch):
            raise RuntimeError("boom")

    ctx = RewardContext(countdown)
    combined = CombinedReward([Broken(ctx), REWARDS.get("format_only")(ctx, None)], [1.0, 1.0])
    with caplog.at_level("WARNING", logger="rungs.rewards"):
        out = combined.score(batch(["<answer>1</answer>", "x"]))
    assert out.rewards.tolist() == [1.0, 0.0]
    assert out.metrics["rewards/broken/failed"] == 1.0 and out.metrics["rewards/broken/mean"] == 0.0
    assert "boom" in caplog.text


def test_majority_vote_tie_goes_to_the_first_answer_and_no_answer_never_wins(countdown):
    from rungs.verify.pool import VerifierPool

    with VerifierPool(countdown, executor="inline") as pool:
        reward = build_reward("majority_vote", None, RewardContext(countdown, None, pool))
        texts = ["no answer", "<answer>3+4</answer>", "<answer>3*4</answer>", "<answer> 4 + 3 </answer>",
                 "<answer>2+3</answer>", "<answer>3*2</answer>", "x", "<answer>5</answer>"]
        b = batch(texts, G=4)
        b.problems[:] = [Problem("p0", "numbers: 3 4; target: 7")] * 4 + [Problem("p1", "numbers: 2 3; target: 5")] * 4
        out = reward.score(b)
    # group 1: "3+4" and " 4 + 3 " are one answer (2 votes) and beat "3*4"; the answerless sample scores 0.
    # group 2: "2+3" and "3*2" tie 1-1: the first met wins; "5" uses no given number and never votes.
    assert out.rewards.tolist() == [0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    assert out.metrics["ttrl/vote_agreement"] == pytest.approx((2 / 4 + 1 / 4) / 2)


class FixedDistPolicy(Policy):
    """Every next-token distribution is `probs` (one known distribution); tokens decode to chars."""

    name = "fixed"
    trainable = True

    def __init__(self, probs):
        self.logp = torch.log(torch.tensor(probs, dtype=torch.float64))

    def generate(self, prompts, n=1, sampling=None):
        raise NotImplementedError

    def token_stats(self, prompt_ids, completion_ids):
        T = max([len(c) for c in completion_ids] + [1])
        mask = torch.tensor([[j < len(c) for j in range(T)] for c in completion_ids])
        ent = float(-(self.logp.exp() * self.logp).sum())
        sc = float(-self.logp.mean() - math.log(len(self.logp)))
        return TokenStats(mask, torch.full(mask.shape, ent) * mask, torch.full(mask.shape, sc) * mask)

    def decode(self, token_ids):
        return "".join(chr(t) for t in token_ids)


def test_self_certainty_and_neg_entropy_of_a_known_distribution(countdown):
    p = [0.5, 0.25, 0.25]
    policy = FixedDistPolicy(p)
    ctx = RewardContext(countdown, policy)
    texts = ["ab", "abcd"]
    b = batch(texts, ids=[[ord(c) for c in t] for t in texts])
    H = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))  # 1.0397 nats
    KL = -math.log(3) - (math.log(0.5) + 2 * math.log(0.25)) / 3  # KL(U || p) = 0.0589
    assert REWARDS.get("neg_entropy")(ctx, None).score(b).rewards.tolist() == pytest.approx([-H, -H], rel=1e-5)
    assert REWARDS.get("self_certainty")(ctx, None).score(b).rewards.tolist() == pytest.approx([KL, KL], rel=1e-5)


def test_tiny_policy_token_stats_of_a_uniform_model():
    from rungs.policies.tiny import TinyPolicy

    policy = TinyPolicy.new(alphabets=["0123456789"], seed=0, d_model=16, n_layers=1, n_heads=2, mlp_hidden=32,
                            max_seq_len=32)
    with torch.no_grad():
        policy.model.embed.weight.zero_()  # tied head: every logit is 0, every distribution uniform
    V = policy.model.embed.weight.shape[0]
    stats = policy.token_stats([[1, 2]], [[3, 4, 5]])
    assert stats.mask.tolist() == [[True, True, True]]
    assert stats.entropy[0].tolist() == pytest.approx([math.log(V)] * 3, rel=1e-5)
    assert stats.self_certainty[0].tolist() == pytest.approx([0.0] * 3, abs=1e-5)


def test_hf_token_stats_match_the_full_softmax(tmp_path):
    pytest.importorskip("transformers")
    from _hf_tiny import make_tiny_hf

    from rungs.policies import load_policy

    policy = load_policy(f"hf:{make_tiny_hf(tmp_path / 'm')}", device="cpu", dtype="float32")
    prompt = policy.encode_prompts(["hi"])[0]
    comp = [10, 20, 30]
    stats = policy.token_stats([prompt, prompt], [comp, comp[:1]])
    with torch.no_grad():
        logits = policy.model(input_ids=torch.tensor([prompt + comp])).logits[0, len(prompt) - 1:-1].float()  # [T, V]
    logp = torch.log_softmax(logits, -1)
    assert torch.allclose(stats.entropy[0], -(logp.exp() * logp).sum(-1), atol=1e-4)
    assert torch.allclose(stats.self_certainty[0], -logp.mean(-1) - math.log(logp.shape[-1]), atol=1e-4)
    assert stats.mask[1].tolist() == [True, False, False] and stats.entropy[1, 1:].abs().sum() == 0


def test_rent_scores_only_the_answer_tokens():
    policy = FixedDistPolicy([0.5, 0.5])
    text = "think<answer>42</answer>"
    mask = answer_token_mask(policy, [ord(c) for c in text], text)
    assert "".join(c for c, m in zip(text, mask) if m) == "<answer>42</answer>"
    assert answer_token_mask(policy, [ord("x")], "x") is None


def test_gspo_sequence_ratio_against_hand_computed_values():
    logps = torch.tensor([[-1.0, -2.0, 0.0], [-0.5, 0.0, 0.0]], requires_grad=True)
    old = torch.tensor([[-1.2, -1.6, 0.0], [-0.7, 0.0, 0.0]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    adv = torch.tensor([1.0, -1.0])
    out = grpo_loss(logps, old, adv, mask, loss_type="grpo", importance_sampling_level="sequence",
                    epsilon_low=0.2, epsilon_high=0.2)
    # row 0: mean log-ratio (0.2 - 0.4) / 2 = -0.1 -> rho = e^-0.1 = 0.9048 (inside the clip), A = +1
    # row 1: log-ratio 0.2 -> rho = e^0.2 = 1.2214 > 1.2, A = -1: min(-1.2214, -1.2) = -1.2214
    expected = (-math.exp(-0.1) + math.exp(0.2)) / 2
    assert float(out.loss.detach()) == pytest.approx(expected, rel=1e-6)
    assert out.metrics["clip_ratio"] == 0.0  # row 1 is above 1 + eps but A < 0: not a clip event
    out.loss.backward()
    # d/dlogp of row 0: -A * rho / T_0 per token = -0.9048 / 2; row 1 (unclipped branch chosen): +1.2214
    assert logps.grad[0, :2].tolist() == pytest.approx([-math.exp(-0.1) / 2 / 2] * 2, rel=1e-5)
    assert logps.grad[1, 0].item() == pytest.approx(math.exp(0.2) / 2, rel=1e-5)


def test_bnpo_is_the_token_mean_of_each_micro_batch():
    logps = torch.zeros(2, 3)
    mask = torch.tensor([[True, True, True], [True, False, False]])
    out = grpo_loss(logps, logps, torch.tensor([1.0, 2.0]), mask, loss_type="bnpo", num_micro_batches=2)
    assert float(out.loss) == pytest.approx(-(3 * 1.0 + 1 * 2.0) / 4 / 2)


def test_rloo_advantages_against_hand_computed_values():
    adv = rloo_advantages(torch.tensor([1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0]), 4)
    # group 1: baseline of a 1 is (0 + 0 + 1) / 3 = 1/3 -> +2/3; of a 0 is 2/3 -> -2/3. group 2: all equal.
    assert adv.advantages.tolist() == pytest.approx([2 / 3, -2 / 3, -2 / 3, 2 / 3, 0, 0, 0, 0])
    assert adv.zero_std.tolist() == [False] * 4 + [True] * 4
    assert GRPOConfig(advantage_estimator="rloo").advantage_estimator == "rloo"
    with pytest.raises(Exception, match="advantage_estimator"):
        GRPOConfig(advantage_estimator="ppo")


def test_psr_and_nsr_are_the_two_signs_of_grpo():
    """Zhu et al. 2025's decomposition: PSR keeps GRPO's positive advantages, NSR its negative ones."""
    from rungs.train.advantages import ADVANTAGES
    from rungs.train.grpo_loss import group_advantages

    rewards = torch.tensor([1.1, 0.1, 0.0, 0.1, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    grpo = group_advantages(rewards, 4)
    psr = ADVANTAGES.get("psr")(rewards, 4)
    nsr = ADVANTAGES.get("nsr")(rewards, 4)
    assert torch.allclose(psr.advantages + nsr.advantages, grpo.advantages)
    assert (psr.advantages >= 0).all() and (nsr.advantages <= 0).all()
    # group 1: only the right answer (1.1) is above the mean; group 3: the one wrong answer is below it
    assert (psr.advantages[:4] > 0).tolist() == [True, False, False, False]
    assert (nsr.advantages[8:] < 0).tolist() == [False, False, True, False]
    assert psr.zero_std.tolist() == grpo.zero_std.tolist() == [False] * 4 + [True] * 4 + [False] * 4
    # scale_rewards keeps its GRPO meaning: "none" leaves r - mean unscaled
    assert ADVANTAGES.get("psr")(rewards, 4, "none").advantages[8:].tolist() == pytest.approx([0.25, 0.25, 0, 0.25])
    assert GRPOConfig(advantage_estimator="psr").advantage_estimator == "psr"


def test_psr_learns_a_trivial_task_without_pushing_anything_down():
    from test_grpo_trainer import BigramPolicy, FirstLetterTask, toy_config

    from rungs.train.grpo import GRPOTrainer
    from rungs.verify.pool import VerifierPool

    task = FirstLetterTask()
    policy = BigramPolicy(seed=0)
    config = toy_config(advantage_estimator="psr")
    with VerifierPool(task, executor="inline") as pool:
        trainer = GRPOTrainer(policy, task, config, pool, problems=task.generate(6, 1), progress=False)
        summary = trainer.train()
    assert summary["reward_last"] > summary["reward_first"] + 0.3, summary


def test_early_stop_fires_on_a_scripted_collapse_and_keeps_the_best(tmp_path):
    from test_grpo_trainer import BigramPolicy, FirstLetterTask, toy_config

    from rungs.runs import RunDir
    from rungs.train.grpo import GRPOTrainer
    from rungs.verify.pool import VerifierPool

    script = iter([0.5, 0.7, 0.6, 0.65, 0.4, 0.9, 0.9])  # better at step 1, then a slide

    class Scripted(GRPOTrainer):
        def _vote_metrics(self, problems):
            return {"eval_vote_agreement": next(script)}

    task = FirstLetterTask()
    config = toy_config(max_steps=6, eval_steps=1, eval_vote_samples=2, metric_for_best_model="eval_vote_agreement",
                        early_stopping_patience=3, reward_funcs=["random"])
    problems = task.generate(4, 1)
    with VerifierPool(task, executor="inline") as pool:
        trainer = Scripted(BigramPolicy(0), task, config, pool, run_dir=RunDir.create(tmp_path / "r"),
                           problems=problems, eval_problems=problems[:2], progress=False)
        summary = trainer.train()
    assert summary["stopped_early"] and summary["steps"] == 4  # evals at 0..4: no gain at 2, 3, 4
    assert summary["completed"] and summary["stopped_early_step"] == 4
    assert summary["best"]["step"] == 1 and summary["best"]["value"] == 0.7
    assert (tmp_path / "r" / "best" / "table.pt").exists() and (tmp_path / "r" / "best" / "best.json").exists()
    assert "rewards/random/mean" in trainer.history[1]


def test_metric_for_best_model_is_checked_before_any_work(tmp_path):
    """A typo, a vote metric without votes, or no held-out set: refused at once, not after an evaluation."""
    import subprocess

    from test_grpo_trainer import BigramPolicy, FirstLetterTask, toy_config

    from rungs.errors import UserError
    from rungs.train.grpo import GRPOTrainer

    with pytest.raises(UserError, match="did you mean 'eval_accuracy'"):
        GRPOConfig(metric_for_best_model="eval_acuracy")
    with pytest.raises(UserError, match="eval_vote_samples >= 2 for eval_vote_agreement"):
        GRPOConfig(metric_for_best_model="eval_vote_agreement")
    GRPOConfig(metric_for_best_model="eval_vote_agreement", eval_vote_samples=4)  # fine with votes
    task = FirstLetterTask()
    with pytest.raises(UserError, match="needs held-out problems"):
        GRPOTrainer(BigramPolicy(0), task, toy_config(metric_for_best_model="eval_accuracy"), None,
                    problems=task.generate(4, 1), progress=False)
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "rungs.cli", "train", "--task", "countdown", "--problems",
                           "builtin:countdown-easy", "--max-steps", "2", "--eval-problems", "builtin:countdown-dev",
                           "--metric-for-best-model", "eval_acuracy", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "did you mean 'eval_accuracy'" in done.stderr
    assert done.stderr.strip().count("\n") == 0 and not out.exists()


def test_cli_reward_flags_reach_the_config():
    import argparse

    from rungs.commands import train

    parser = argparse.ArgumentParser()
    train.add_arguments(parser)
    args = parser.parse_args(["--task", "integration", "--problems", "builtin:integration-dev", "--reward",
                              "verifier,format_only", "--reward-weights", "1,0.1"])
    _job, config, _out, _resuming = train.resolve(args)
    assert config.reward_funcs == ["verifier", "format_only"] and config.reward_weights == [1.0, 0.1]
    args = parser.parse_args(["--task", "integration", "--problems", "x", "--reward", "random", "--reward-weights", "1,2"])
    with pytest.raises(Exception, match="reward_weights"):
        train.resolve(args)


def test_self_certainty_needs_no_label_on_math():
    task = get_task("math")
    policy = FixedDistPolicy([0.9, 0.1])
    ctx = RewardContext(task, policy)
    b = RewardBatch([Problem("m", "1+1?")] * 2, [Completion("ab", [97, 98]), Completion("c", [99])],
                    [Verdict.fail(Status.ERROR, "no reference answer")] * 2, [[1]] * 2, 2)
    out = build_reward("self_certainty", None, ctx).score(b)
    assert out.rewards[0] > 0 and "rewards/self_certainty/failed" not in out.metrics


def test_reward_output_defaults():
    out = RewardOutput(torch.zeros(2))
    assert out.metrics == {} and out.void is None
    assert SamplingParams().temperature == 1.0


def test_ttrl_vote_mode_is_majority_vote_on_the_test_set():
    from rungs.pipelines.ttrl import TTRLConfig, vote_reward_funcs

    config = TTRLConfig(mode="vote", vote_samples=16)
    assert vote_reward_funcs(config, GRPOConfig(num_generations=8)) == ["majority_vote:16", "format"]
    assert vote_reward_funcs(config, GRPOConfig(num_generations=8, reward_funcs=["self_certainty"])) == ["self_certainty"]


def test_the_format_term_is_shaping_and_leaves_the_signal_out(countdown):
    """Regression (issue 8, item 0): a group whose answers are all wrong, one of them malformed, has
    reward variance from the 0.1 format term alone; DAPO's filter (and the solve-rate curriculum)
    must see no signal there, while a group with a right answer keeps its signal."""
    from rungs.train.rollout import zero_std_groups

    ctx = RewardContext(countdown)
    wrong, ok = Verdict.fail(Status.WRONG), Verdict(1.0, Status.CORRECT)
    texts = ["<answer>1</answer>", "<answer>2</answer>", "no tag", "<answer>3</answer>"] * 2
    verdicts = [wrong] * 4 + [ok, wrong, wrong, wrong]
    out = build_reward("verifier,format", None, ctx, format_reward_weight=0.1).score(batch(texts, verdicts, G=4))
    assert out.rewards[:4].tolist() == pytest.approx([0.1, 0.1, 0.0, 0.1])  # format variance only
    assert out.signal.tolist() == pytest.approx([0, 0, 0, 0, 1, 0, 0, 0])
    assert zero_std_groups(out.rewards, 4).tolist() == [False, False]
    assert zero_std_groups(out.signal, 4).tolist() == [True, False]


def test_a_label_free_run_on_unlabelled_rows_logs_no_accuracy_and_no_verifier_failures():
    """Rows of a task that needs labels, without one: the verdict says unlabelled; the trainer logs
    how many, no accuracy (it is unknown, not 0) and no verifier failures."""
    from test_grpo_trainer import BigramPolicy, FirstLetterTask, toy_config

    from rungs.train.grpo import GRPOTrainer
    from rungs.verify.pool import VerifierPool

    class NeedsLabels(FirstLetterTask):
        needs_answer = True

    task = NeedsLabels()
    problems = [Problem(f"p{i}", f"q{i}", None) for i in range(4)]
    with VerifierPool(task, executor="inline") as pool:
        trainer = GRPOTrainer(BigramPolicy(0), task, toy_config(max_steps=1, eval_on_start=False,
                                                                 reward_funcs=["random"]),
                              pool, problems=problems, progress=False)
        trainer.train()
    step = next(e for e in trainer.history if e.get("type") == "train")
    assert "accuracy" not in step and step["verifier/failures"] == 0.0
    assert step["verifier/unlabelled"] == 4 * 8
