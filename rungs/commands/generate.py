"""Sample a policy on one problem and verify every sample: the quickest look at what a model does.

examples:
  rungs generate --task integration --problem "integrate(x*cos(x), x)" --n 8
  rungs generate --task countdown --problem "numbers: 3 7 25 50; target: 72" \\
      --policy hf:Qwen/Qwen2.5-0.5B-Instruct --n 4 --max-new-tokens 512
  rungs generate --task math --problem "What is 1+1?" --gold 2 \\
      --policy openai:http://127.0.0.1:8000/v1 --model Qwen/Qwen2.5-7B-Instruct --json

Each sample is printed with its verdict (status, reward, the extracted answer), then "k/n correct".
Samples are checked in the sandboxed verifier pool, the same code path that scores rollouts in
training. --json prints one JSON object per sample instead.
"""

from __future__ import annotations

import argparse
import json

from rungs.commands._policy_args import add_policy_arguments, policy_kwargs
from rungs.config import finite_float_arg
from rungs.errors import UserError

HELP = "sample a policy on one problem and verify each sample"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", required=True, help="task name (see `rungs tasks`)")
    parser.add_argument("--problem", required=True, help="the problem text, as in a problems file")
    parser.add_argument("--gold", default=None, help="the reference answer, for tasks that need one (math)")
    add_policy_arguments(parser)
    parser.add_argument("--n", type=int, default=8, help="samples (default: 8)")
    parser.add_argument("--temperature", type=finite_float_arg, default=1.0, help="sampling temperature; 0 = greedy (default: 1.0)")
    parser.add_argument("--top-p", type=finite_float_arg, default=1.0, help="nucleus sampling threshold (default: 1.0)")
    parser.add_argument("--top-k", type=int, default=0, help="top-k sampling, 0 = off (default: 0)")
    parser.add_argument("--max-new-tokens", type=int, default=256, help="tokens per sample (default: 256)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same samples (default: 0)")
    parser.add_argument("--timeout", type=finite_float_arg, default=5.0, help="verifier time limit per sample in seconds (default: 5)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per sample")


def run(args: argparse.Namespace) -> int:
    from rungs.pipelines.evaluate import check_sampling_flags
    from rungs.policies import SamplingParams, load_policy
    from rungs.tasks import get_task
    from rungs.types import Problem
    from rungs.verify.pool import VerifierPool

    if args.n < 1:
        raise UserError(f"--n must be >= 1, got {args.n}")
    if not args.timeout > 0:
        raise UserError(f"--timeout must be > 0 seconds, got {args.timeout:g}")
    task = get_task(args.task)
    problem = Problem(id="--problem", text=args.problem, answer=args.gold)
    task.parse_problem(problem)
    if task.needs_answer and args.gold is None:
        raise UserError(f"task {task.name!r} needs a reference answer: add --gold")
    check_sampling_flags(args.temperature, args.top_p, args.top_k, args.max_new_tokens)  # as rungs eval checks them
    sampling = SamplingParams(temperature=args.temperature, top_p=args.top_p, top_k=args.top_k,
                              max_new_tokens=args.max_new_tokens, seed=args.seed)

    policy = load_policy(args.policy, **policy_kwargs(args, task.name))
    try:
        prompt = task.prompt(problem, policy.prompt_style)
        completions = policy.generate([prompt], n=args.n, sampling=sampling)[0]
    finally:
        policy.close()
    with VerifierPool(task, workers=min(args.n, 4), timeout_s=args.timeout) as pool:
        verdicts = pool.verify([problem] * len(completions), [c.text for c in completions])

    correct = sum(v.correct for v in verdicts)
    for i, (c, v) in enumerate(zip(completions, verdicts)):
        if args.json:
            print(json.dumps({"sample": i, "text": c.text, "tokens": c.num_tokens, "finish_reason": c.finish_reason,
                              "mean_logprob": c.mean_logprob(), **v.to_dict()}, ensure_ascii=False))
            continue
        answer = f" answer={v.answer!r}" if v.answer is not None else ""
        truncated = " (truncated)" if c.truncated else ""
        print(f"--- sample {i + 1}/{len(completions)}: {v.status.value}, reward {v.reward:g}{answer}{truncated}")
        print(c.text.rstrip())
        if v.detail and not v.correct:
            print(f"    ({v.detail})")
    if not args.json:
        print(f"{correct}/{len(completions)} correct")
    return 0
