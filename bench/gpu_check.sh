#!/usr/bin/env bash
# The hf policy on a real GPU: what CI, which has no GPU, cannot check.
#
#   bash bench/gpu_check.sh OUT_DIR [WHEELS_DIR]
#
# Why: every hf-policy test runs on CPU with tiny local models; device placement, bfloat16, LoRA
# under CUDA, resume on a GPU and the peak GPU memory of a GRPO step are only seen on a GPU. No
# weights are downloaded: the model is a random Llama with a character tokenizer built locally
# (tests/_hf_tiny.py), so the accuracies printed are noise and only the plumbing, the figures of
# memory and the step-time ratio against TRL mean anything.
#
# What runs, each as a step whose return code and seconds are printed (a failed step does not stop
# the rest; the script exits non-zero if any failed):
#   1. a random Llama (hidden 512, 8 layers) written to a temporary folder;
#   2. `rungs ladder` on 8 integration problems (depth 1), bfloat16 on cuda, LoRA rank 8, 4 steps;
#   3. `rungs ladder --resume` of that run to 6 steps (the kill-and-resume path, on a GPU);
#   4. `rungs eval` of the saved adapter on 8 easy problems (greedy and best-of-4), on cuda;
#   5. the hf-policy and TRL tests (CPU device) under this machine's torch and transformers;
#   6. bench/generate.py's log-prob memory, measured with torch.cuda.max_memory_allocated;
#   7. bench/trl_step.py --device cuda: one GRPO step of rungs' trainer against TRL's GRPOTrainer.
# WHEELS_DIR: Python wheels to install first with --no-deps (a machine that cannot reach PyPI).
# DEVICE=cpu runs steps 1-5 the same way on a CPU (a dry run of this script); 6-7 then measure CPU.
set -uo pipefail
device=${DEVICE:-cuda}
out=${1:?usage: bash bench/gpu_check.sh OUT_DIR [WHEELS_DIR]}
wheels=${2:-}
mkdir -p "$out"
exec > >(tee -a "$out/gpu_check.log") 2>&1
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

if [ -n "$wheels" ]; then
  python -m pip install -q --no-deps --no-index "$wheels"/*.whl || echo "some wheels did not install" >&2
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # this checkout, whatever else is installed
rungs() { python -m rungs "$@"; }  # the `python` that has torch, not another one's console script
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python -c "import sys, torch, transformers, peft; print('python', sys.version.split()[0], '| torch', torch.__version__,
'| cuda', torch.cuda.is_available(), '| transformers', transformers.__version__, '| peft', peft.__version__)"

work=$(mktemp -d)
failed=()
summary=()
step() {
  local name=$1
  shift
  echo
  echo "== $name"
  local t0=$SECONDS
  "$@"
  local rc=$?
  summary+=("$(printf '%-44s rc %-3s %5s s' "$name" "$rc" "$((SECONDS - t0))")")
  [ "$rc" -eq 0 ] || failed+=("$name")
}

step "model: random Llama 512x8" python -c "
import sys; sys.path.insert(0, 'tests')
from _hf_tiny import make_tiny_hf
make_tiny_hf('$work/model', hidden=512, layers=8)"
step "problems: 8 of integration-train" python -c "
from rungs.data import load_problems
import json
with open('$work/train.jsonl', 'w') as f:
    for p in load_problems('builtin:integration-train', limit=8):
        f.write(json.dumps({'id': p.id, 'problem': p.text, 'answer': p.answer}) + '\n')"
policy=(--policy "hf:$work/model" --policy-option "device=$device" --policy-option dtype=bfloat16 --policy-option lora_rank=8)
step "rungs ladder, 4 steps, bf16 + LoRA on $device" rungs ladder --task integration --problems "$work/train.jsonl" \
  "${policy[@]}" --depth 1 --width 2 --eval-problems none --max-steps 4 --save-steps 2 --prompts-per-step 4 \
  --num-generations 8 --max-completion-length 64 --out "$work/ladder" --no-progress
step "rungs ladder --resume to 6 steps" rungs ladder --resume "$work/ladder" --max-steps 6 --no-progress
step "rungs eval of the adapter on $device" rungs eval --task integration --problems builtin:integration-easy --limit 8 \
  --policy "hf:$work/ladder/final" --policy-option "device=$device" --strategy greedy,best_of_n --n 1,4 --seeds 1 \
  --max-new-tokens 64 --no-plot --no-progress --out "$work/eval"
cp "$work/ladder/events.jsonl" "$out/ladder_events.jsonl" 2>/dev/null
step "pytest: hf policy and TRL (CPU device)" python -m pytest -q -p no:cacheprovider -x tests/test_hf_policy.py \
  tests/test_trl_e2e.py
step "bench/generate.py: log-prob memory" python bench/generate.py --skip-sampling
step "bench/trl_step.py --device $device" python bench/trl_step.py --device "$device" --hidden 1024 --layers 12 \
  --prompts 8 --generations 8 --length 128 --micro 64 --steps 5 --lr 1e-5

echo
echo "== summary"
printf '%s\n' "${summary[@]}"
rm -rf "$work"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "failed: ${failed[*]}"
  exit 1
fi
