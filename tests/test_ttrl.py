"""Test-time RL and LADDER pipelines: rollback, resume, majority-vote rewards, saved trees."""

from __future__ import annotations

import json

import pytest
import torch

from rungs.pipelines.ladder import LadderConfig, run_ladder
from rungs.pipelines.ttrl import TTRLConfig, run_ttrl
from rungs.policies.base import SamplingParams
from rungs.policies.tiny import TinyPolicy
from rungs.runs import read_jsonl
from rungs.tasks import get_task
from rungs.train.grpo_config import GRPOConfig
from rungs.types import Problem
from rungs.verify.pool import VerifierPool

SMALL = {"d_model": 32, "n_layers": 1, "n_heads": 2, "mlp_hidden": 64, "max_seq_len": 128}


@pytest.fixture(scope="module")
def task():
    return get_task("integration")


@pytest.fixture(scope="module")
def pool(task):
    with VerifierPool(task, workers=2, timeout_s=5.0) as p:
        yield p


def small_policy(task, seed=0):
    return TinyPolicy.new(alphabets=[task.alphabet], seed=seed, **SMALL)


def grpo(**kw):
    base = dict(max_completion_length=12, prompts_per_step=2, num_generations=3, learning_rate=1e-2,
                logging_steps=1000, save_steps=0, eval_on_start=False, seed=1)
    base.update(kw)
    return GRPOConfig(**base)


def weights(policy):
    return {k: v.clone() for k, v in policy.model.state_dict().items()}


def test_variants_mode_trains_then_rolls_back_bitwise(tmp_path, task, pool):
    policy = small_policy(task)
    before = weights(policy)
    config = TTRLConfig(problems="builtin:integration-hard", limit=2, steps=2, check_every=1, depth=1, width=2,
                        skip_solved=False, out=str(tmp_path / "run"), max_new_tokens=12)
    summary = run_ttrl(config, grpo(), policy=policy, task=task, pool=pool, echo=False)
    after = weights(policy)
    assert all(torch.equal(before[k], after[k]) for k in before)  # rolled back exactly
    rows = read_jsonl(tmp_path / "run" / "outcomes.jsonl")
    assert [r["id"] for r in rows] == ["integration-hard-000", "integration-hard-001"]
    assert all(r["steps"] >= 1 and r["variants"] >= 1 for r in rows)
    events = read_jsonl(tmp_path / "run" / "events.jsonl")
    assert len(events) == sum(r["steps"] for r in rows) and len({e["step"] for e in events}) == len(events)
    assert summary["problems"] == 2 and 0.0 <= summary["accuracy_after"] <= 1.0
    assert (tmp_path / "run" / "ttrl_outcomes.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_training_between_snapshot_and_restore_does_change_weights(task, pool):
    """The rollback test above would pass vacuously if TTRL never updated the weights."""
    from rungs.train.grpo import GRPOTrainer

    policy = small_policy(task)
    before = weights(policy)
    problems = [Problem("a", "integrate(2*x, x)"), Problem("b", "integrate(3*x**2, x)")]
    GRPOTrainer(policy, task, grpo(), pool=pool, problems=problems, progress=False).train_steps(1)
    after = weights(policy)
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_resume_after_a_kill_redoes_only_the_unfinished_problem(tmp_path, task, pool):
    run = tmp_path / "run"
    config = TTRLConfig(problems="builtin:integration-hard", limit=3, steps=1, depth=1, width=2, skip_solved=False,
                        out=str(run), max_new_tokens=12)
    run_ttrl(config, grpo(), policy=small_policy(task), task=task, pool=pool, echo=False)
    rows = read_jsonl(run / "outcomes.jsonl")
    events = read_jsonl(run / "events.jsonl")
    # Simulate a kill during the third problem: its outcome was never written, its events were,
    # and the last outcome line is torn.
    (run / "outcomes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:2]) + '{"id": "integ')
    stray = {**events[-1], "step": 999}
    with open(run / "events.jsonl", "a") as fh:
        fh.write(json.dumps(stray) + "\n")
    summary = run_ttrl(config, grpo(), resume_dir=str(run), policy=small_policy(task), task=task, pool=pool, echo=False)
    resumed = read_jsonl(run / "outcomes.jsonl")
    assert [r["id"] for r in resumed] == [r["id"] for r in rows]  # each problem exactly once
    assert resumed[:2] == rows[:2]  # finished problems kept as they were
    steps = [e["step"] for e in read_jsonl(run / "events.jsonl")]
    assert 999 not in steps and len(steps) == len(set(steps)) == sum(r["steps"] for r in resumed)
    assert summary["problems"] == 3


def test_majority_vote_rewards_agreement_and_reports_label_accuracy(task):
    from rungs.rewards import build_reward
    from rungs.rewards.base import RewardBatch, RewardContext
    from rungs.types import Completion

    with VerifierPool(task, executor="inline") as inline:
        policy = small_policy(task)
        rewarder = build_reward(["majority_vote"], None, RewardContext(task, policy, inline, SamplingParams()))
        p = Problem("p", "integrate(2*x, x)")
        q = Problem("q", "integrate(3*x**2, x)")
        texts = ["<answer>x**2</answer>", "<answer>x**2 + 5</answer>", "<answer>x**3</answer>", "no answer",
                 "<answer>x</answer>", "<answer>x</answer>", "<answer>x**3</answer>", "<answer>x**3+1</answer>"]
        problems = [p] * 4 + [q] * 4
        out = rewarder.score(RewardBatch(problems, [Completion(t) for t in texts], inline.verify(problems, texts),
                                         [[1]] * 8, num_generations=4))
        verdicts = [type("V", (), {"reward": float(r)}) for r in out.rewards]
        # p: x**2 and x**2+5 are one answer (they differ by a constant) and win 2 votes to 1.
        assert [v.reward for v in verdicts[:4]] == [1.0, 1.0, 0.0, 0.0]
        # q: "x" and "x**3" tie 2-2 ... the majority is whichever Counter meets first: "x" (wrong).
        assert [v.reward for v in verdicts[4:]] == [1.0, 1.0, 0.0, 0.0]
        metrics = out.metrics
        assert metrics["ttrl/label_accuracy"] == pytest.approx(0.5)  # p's majority is right, q's is not
        assert metrics["ttrl/true_accuracy"] == pytest.approx(4 / 8)
        # p: all 4 pseudo-rewards equal the true ones; q: the wrong majority flips all 4.
        assert metrics["ttrl/reward_accuracy"] == pytest.approx(4 / 8)
        assert metrics["rewards/majority_vote/mean"] == pytest.approx(4 / 8)


def test_ladder_saves_a_reusable_tree_and_final_weights(tmp_path, task, pool, capsys):
    config = LadderConfig(problems="builtin:integration-hard", limit=2, eval_problems="builtin:integration-dev",
                          eval_limit=3, depth=1, width=2, out=str(tmp_path / "a"))
    summary = run_ladder(config, grpo(max_steps=2), policy=small_policy(task), task=task, pool=pool, echo=True)
    assert "plots: " + ", ".join(summary["plots"]) in capsys.readouterr().out and summary["plots"]  # named at the end
    tree = tmp_path / "a" / "variants.jsonl"
    assert summary["variants"] == len(read_jsonl(tree)) >= 2
    assert (tmp_path / "a" / "final" / "model.safetensors").exists()
    reloaded = TinyPolicy.from_pretrained(tmp_path / "a" / "final")
    assert reloaded.model.cfg.d_model == SMALL["d_model"]
    again = LadderConfig(problems="builtin:integration-hard", limit=2, eval_problems=None, variants=str(tree),
                         out=str(tmp_path / "b"))
    second = run_ladder(again, grpo(max_steps=1), policy=small_policy(task), task=task, pool=pool, echo=False)
    assert second["variants"] == summary["variants"]
    assert read_jsonl(tmp_path / "b" / "variants.jsonl") == read_jsonl(tree)


def test_ladder_trains_only_on_variants_at_or_above_min_variant_difficulty_but_keeps_the_whole_tree(
        tmp_path, task, pool):
    whole = LadderConfig(problems="builtin:integration-hard", limit=2, eval_problems=None, depth=2, width=3,
                         out=str(tmp_path / "a"))
    run_ladder(whole, grpo(max_steps=1), policy=small_policy(task), task=task, pool=pool, echo=False)
    tree = read_jsonl(tmp_path / "a" / "variants.jsonl")
    levels = sorted({row["difficulty"] for row in tree})
    assert len(levels) >= 2, levels
    floor = levels[len(levels) // 2]
    kept = [row for row in tree if row["difficulty"] >= floor]
    assert 0 < len(kept) < len(tree)
    cut = LadderConfig(problems="builtin:integration-hard", limit=2, eval_problems=None,
                       variants=str(tmp_path / "a" / "variants.jsonl"), min_variant_difficulty=floor,
                       out=str(tmp_path / "b"))
    summary = run_ladder(cut, grpo(max_steps=1), policy=small_policy(task), task=task, pool=pool, echo=False)
    assert (summary["variants"], summary["variants_built"]) == (len(kept), len(tree))
    assert summary["pool_size"] == len(kept) + 2  # and the two roots
    assert read_jsonl(tmp_path / "b" / "variants.jsonl") == tree  # saved whole: a later run may cut elsewhere


def test_vote_mode_rewards_say_what_is_voted_on(tmp_path):
    from rungs.errors import UserError
    from rungs.pipelines.ttrl import vote_reward_funcs

    config = TTRLConfig(mode="vote", vote_samples=8, out=str(tmp_path / "v"))
    assert vote_reward_funcs(config, grpo(reward_funcs=["verifier", "format"])) == ["majority_vote:8", "format"]
    assert vote_reward_funcs(config, grpo(reward_funcs=["majority_vote:8"])) == ["majority_vote:8"]
    assert vote_reward_funcs(config, grpo(reward_funcs=["self_certainty"])) == ["self_certainty"]
    with pytest.raises(UserError, match="votes on 4 answers, but vote mode votes on .* = 8"):
        vote_reward_funcs(config, grpo(reward_funcs=["majority_vote:4", "format"]))
    with pytest.raises(UserError, match="--vote-samples 1: expected an integer >= 2"):
        TTRLConfig(mode="vote", vote_samples=1, out=str(tmp_path / "w"))  # a vote of one is no vote
    TTRLConfig(mode="variants", vote_samples=1, out=str(tmp_path / "x"))  # unused there


def test_vote_mode_trains_on_majority_votes_and_reports_last_and_best(tmp_path, task, pool):
    config = TTRLConfig(mode="vote", problems="builtin:integration-dev", limit=2, steps_vote=2, vote_samples=4,
                        out=str(tmp_path / "v"), max_new_tokens=12)
    summary = run_ttrl(config, grpo(eval_vote_samples=2, metric_for_best_model="eval_vote_agreement", eval_steps=1),
                       policy=small_policy(task), task=task, pool=pool, echo=False)
    assert summary["reward_funcs"] == ["majority_vote:4", "format"]  # --mode vote is --reward majority_vote:N
    assert summary["steps"] == 2 and summary["best_step"] in (1, 2) and "accuracy_best" in summary
    train = [e for e in read_jsonl(tmp_path / "v" / "events.jsonl") if e["type"] == "train"]
    assert all("ttrl/vote_agreement" in e and "ttrl/label_accuracy" in e and "rewards/majority_vote/mean" in e for e in train)
    assert (tmp_path / "v" / "best" / "best.json").exists()
    # 4 votes per problem, 3 of them trained on: the 4th sample per group is logged as compute too
    assert all(0 < e["tokens/vote"] <= 2 * 12 and e["tokens/generated"] > 0 for e in train)


def test_ladder_and_ttrl_default_to_the_tasks_own_builtin_sets():
    from rungs.pipelines.ladder import LadderConfig
    from rungs.pipelines.ttrl import TTRLConfig

    assert (LadderConfig().problems, LadderConfig().eval_problems) == ("builtin:integration-train", "builtin:integration-dev")
    countdown = LadderConfig(task="countdown")
    assert (countdown.problems, countdown.eval_problems) == ("builtin:countdown-train", "builtin:countdown-dev")
    assert LadderConfig(task="math", problems="mine.jsonl").eval_problems is None  # no builtin:math-dev: no evaluation rather than a wrong set
    assert LadderConfig(task="countdown", eval_problems=None).eval_problems is None
    assert LadderConfig(task="countdown", problems="mine.jsonl").problems == "mine.jsonl"
    assert TTRLConfig(task="countdown").problems == "builtin:countdown-hard"
    assert TTRLConfig().problems == "builtin:integration-hard"


def test_a_steps_compute_counts_are_summed_over_its_resampling_rounds_and_rates_averaged():
    """tokens/vote was averaged over a step's scoring calls (DAPO's resampling rounds): undercounted."""
    from types import SimpleNamespace

    from rungs.train.rollout import merged_reward_metrics

    batch = SimpleNamespace(reward_metrics=[(8, {"tokens/vote": 100.0, "ttrl/vote_agreement": 0.5}),
                                            (4, {"tokens/vote": 40.0, "ttrl/vote_agreement": 1.0})])
    merged = merged_reward_metrics(batch)
    assert merged["tokens/vote"] == 140.0 and merged["ttrl/vote_agreement"] == pytest.approx((8 * 0.5 + 4) / 12)
