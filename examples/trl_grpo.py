"""Train a Hugging Face model with TRL's GRPOTrainer, rewarded by a rungs verifier.

rungs' verifiers are plain TRL reward functions: `trl_reward(task)` checks each completion in a
sandboxed worker pool (hard time and memory limits, hostile output scores 0) and reads the
`answer` column when the task needs one (math). This script turns a rungs problem set into a TRL
dataset and trains with TRL's own trainer, so nothing of rungs' trainer is involved.

    pip install -e ".[hf]" trl
    python examples/trl_grpo.py --model Qwen/Qwen2.5-0.5B-Instruct --task integration \\
        --problems builtin:integration-easy --max-steps 100
"""

from __future__ import annotations

import argparse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a causal LM: hub name or local path")
    parser.add_argument("--task", default="integration")
    parser.add_argument("--problems", default="builtin:integration-easy")
    parser.add_argument("--out", default="runs/trl-grpo")
    parser.add_argument("--max-steps", type=int, default=100)
    parser.add_argument("--num-generations", type=int, default=8)
    args = parser.parse_args()

    import torch
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from rungs.data import load_problems
    from rungs.integrations import trl_reward
    from rungs.tasks import get_task

    task = get_task(args.task)
    rows = [{"prompt": [{"role": "user", "content": task.prompt(p, "instruct")}], "problem": p.text,
             "answer": p.answer or ""} for p in load_problems(args.problems)]
    config = GRPOConfig(output_dir=args.out, max_steps=args.max_steps, num_generations=args.num_generations,
                        per_device_train_batch_size=args.num_generations, max_completion_length=256,
                        beta=0.001, learning_rate=1e-6, logging_steps=1, report_to="none",
                        # TRL defaults to bf16: use it where the GPU has it, else float32 (a CPU, a T4, a V100)
                        bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
                        use_cpu=not torch.cuda.is_available())
    trainer = GRPOTrainer(model=args.model, reward_funcs=[trl_reward(task)], args=config,
                          train_dataset=Dataset.from_list(rows))
    trainer.train()


if __name__ == "__main__":
    main()
