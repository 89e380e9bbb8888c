#!/usr/bin/env bash
# Label-free TTRL in veRL: majority-vote rewards over the rollout.n responses of each prompt
# (needs veRL, vLLM/SGLang and a GPU; not run by CI).
#
# The vote needs every response of a prompt in one call, which only veRL's legacy *batch* reward
# manager gives (`reward_model.reward_manager=batch`, veRL 0.6; checked against 0.6.1's config and
# its verl/workers/reward_manager/batch.py). veRL 0.7 and later score through the reward loop, which
# calls the reward once per response (0.9 refuses `reward_manager.name=batch`: "Unknown reward
# manager"), so this script does not run there: use `rungs ttrl --mode vote` or TRL's
# `trl_vote_reward` (README, "Label-free TTRL inside TRL") instead.
#   bash examples/verl/run_ttrl.sh Qwen/Qwen2.5-Math-1.5B my_test_set.jsonl math
set -euo pipefail
MODEL=${1:-Qwen/Qwen2.5-Math-1.5B}
PROBLEMS=${2:-builtin:integration-hard}
TASK=${3:-integration}
HERE=$(cd "$(dirname "$0")" && pwd)
python "$HERE/make_parquet.py" --task "$TASK" --problems "$PROBLEMS" --no-labels --out data/ttrl.parquet
python3 -m verl.trainer.main_ppo \
  algorithm.adv_estimator=grpo \
  data.train_files=data/ttrl.parquet data.val_files=data/ttrl.parquet \
  data.train_batch_size=32 data.max_prompt_length=512 data.max_response_length=1024 \
  actor_rollout_ref.model.path="$MODEL" \
  actor_rollout_ref.rollout.name=vllm actor_rollout_ref.rollout.n=32 actor_rollout_ref.rollout.temperature=1.0 \
  reward_model.reward_manager=batch \
  custom_reward_function.path="$HERE/reward.py" \
  custom_reward_function.name=compute_score_vote_batch \
  trainer.n_gpus_per_node=1 trainer.nnodes=1 trainer.total_epochs=10 trainer.logger='["console"]' "${@:4}"
