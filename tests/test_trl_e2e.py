"""TRL's own GRPOTrainer trains two steps on a tiny local model with rungs' reward functions.

`trl_reward` (verified rewards, needs answers) and `trl_vote_reward` (label-free TTRL: majority
vote per prompt group) are passed as `reward_funcs`, exactly as a TRL user would; the dataset is
conversational, the answer column is absent for the vote. On CPU, a few tokens per completion.
"""

from __future__ import annotations

import pytest

trl = pytest.importorskip("trl")
datasets = pytest.importorskip("datasets")

from tests._hf_tiny import make_tiny_hf  # noqa: E402


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return make_tiny_hf(tmp_path_factory.mktemp("tiny-hf"))


class Recorder:
    """Passes TRL's call through and records (prompts, rewards)."""

    def __init__(self, inner):
        self.inner, self.__name__, self.calls = inner, inner.__name__, []

    def __call__(self, prompts, completions, **kwargs):
        rewards = self.inner(prompts, completions, **kwargs)
        self.calls.append((prompts, rewards))
        return rewards

    def close(self):
        self.inner.close()


def _train(model_dir, out_dir, reward_funcs, rows):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = trl.GRPOConfig(
        output_dir=str(out_dir), use_cpu=True, bf16=False, fp16=False, seed=0, max_steps=2,
        per_device_train_batch_size=4, num_generations=4, max_completion_length=8, learning_rate=1e-2,
        beta=0.0, report_to="none", save_strategy="no", logging_steps=1, disable_tqdm=True, dataloader_num_workers=0,
        temperature=1.0,
    )
    trainer = trl.GRPOTrainer(model=model, reward_funcs=reward_funcs, args=config,
                              train_dataset=datasets.Dataset.from_list(rows),
                              processing_class=AutoTokenizer.from_pretrained(model_dir))
    trainer.train()
    assert trainer.state.global_step == 2
    return trainer.state.log_history


def test_grpo_trainer_with_trl_reward_and_trl_vote_reward(tiny_model, tmp_path) -> None:
    from rungs.integrations import trl_reward, trl_vote_reward

    verified = Recorder(trl_reward("math", workers=1))
    voted = Recorder(trl_vote_reward("math", workers=1))
    # The tiny model writes noise (no answers, so every reward is 0 and nothing is learnt): what
    # is checked is that TRL runs its steps with these functions and what they were given.
    rows = [{"prompt": [{"role": "user", "content": f"{a}+{a}?"}], "answer": str(2 * a)} for a in range(1, 5)]
    try:
        history = _train(tiny_model, tmp_path / "both", [verified, voted], rows)
        logged = {k for entry in history for k in entry}
        assert {"rewards/math_reward/mean", "rewards/math_vote_reward/mean", "math_vote_reward/majority_ratio"} <= logged
        for recorder in (verified, voted):
            assert recorder.calls and all(len(set(map(str, prompts))) * 4 == len(prompts) for prompts, _ in recorder.calls)
            assert all(r in (0.0, 1.0) for _, rewards in recorder.calls for r in rewards)
        voted.calls.clear()
        # label-free: no answer column at all
        _train(tiny_model, tmp_path / "vote", [voted], [{"prompt": r["prompt"]} for r in rows])
        assert voted.calls and all(None not in rewards for _, rewards in voted.calls)
    finally:
        verified.close()
        voted.close()


def test_vote_reward_as_trl_calls_it() -> None:
    """The reward's own contract: per prompt group, 1 for the majority answer, no labels needed."""
    from rungs.integrations import trl_vote_reward

    f = trl_vote_reward("math", workers=1)
    logged: dict = {}
    try:
        prompts = ["p1"] * 4 + [[{"role": "user", "content": "p2"}]] * 3
        completions = ["\\boxed{2}", "\\boxed{2}", "\\boxed{3}", "none",
                       [{"role": "assistant", "content": "\\boxed{5}"}], [{"role": "assistant", "content": "\\boxed{5}"}],
                       [{"role": "assistant", "content": "\\boxed{6}"}]]
        rewards = f(prompts=prompts, completions=completions, completion_ids=[[1]] * 7, trainer_state=None,
                    log_metric=lambda k, v: logged.setdefault(k, v), log_extra=lambda k, v: None)
        assert rewards == [1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0]
        assert logged["math_vote_reward/majority_ratio"] == pytest.approx((2 / 4 + 2 / 3) / 2)
        assert "math_vote_reward/label_accuracy" not in logged  # no answers: nothing to compare with
        rewards = f(prompts=["p"] * 3, completions=["\\boxed{4}", "\\boxed{4}", "\\boxed{1}"], answer=["1"] * 3,
                    log_metric=lambda k, v: logged.__setitem__(k, v))
        assert rewards == [1.0, 1.0, 0.0] and logged["math_vote_reward/label_accuracy"] == 0.0
    finally:
        f.close()
