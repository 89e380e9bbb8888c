#!/usr/bin/env bash
# GRPO in veRL 0.9 with a rungs verifier as the reward (needs veRL, vLLM/SGLang and a GPU; not run by CI).
# veRL 0.9's reward loop calls compute_score once per response (its default naive manager).
#   bash examples/verl/run_grpo.sh Qwen/Qwen2.5-0.5B-Instruct countdown
set -euo pipefail
MODEL=${1:-Qwen/Qwen2.5-0.5B-Instruct}
TASK=${2:-countdown}
HERE=$(cd "$(dirname "$0")" && pwd)
python "$HERE/make_parquet.py" --task "$TASK" --problems "builtin:$TASK-train" --out "data/$TASK-train.parquet"
python "$HERE/make_parquet.py" --task "$TASK" --problems "builtin:$TASK-dev" --split test --out "data/$TASK-dev.parquet"
python3 -m verl.trainer.main_ppo \
  algorithm.adv_estimator=grpo \
  data.train_files="data/$TASK-train.parquet" data.val_files="data/$TASK-dev.parquet" \
  data.train_batch_size=64 data.max_prompt_length=512 data.max_response_length=512 \
  actor_rollout_ref.model.path="$MODEL" \
  actor_rollout_ref.rollout.name=vllm actor_rollout_ref.rollout.n=8 \
  actor_rollout_ref.actor.use_kl_loss=True actor_rollout_ref.actor.kl_loss_coef=0.001 \
  reward.custom_reward_function.path="$HERE/reward.py" \
  reward.custom_reward_function.name=compute_score \
  +reward.custom_reward_function.reward_kwargs.return_dict=true \
  trainer.n_gpus_per_node=1 trainer.nnodes=1 trainer.total_epochs=1 trainer.logger='["console"]' "${@:3}"
