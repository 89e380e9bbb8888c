"""Given the arithmetic, can a countdown model plan? A worked-chain model sampled with a calculator.

`bench/chain_arithmetic.py` found that a worked-chain countdown model (`rungs pretrain
--answer-format steps`, chains such as `46-31=15;21*15=315;...`) states a quarter of its steps'
values right, and almost none above 100; `bench/countdown_chance.py` found that the shipped base's
pass@64 is about what the random process that drew the targets reaches. Is anything besides the
arithmetic missing? This samples the same model twice on the same problems:

    plain       as it is (`bench/precondition.py`'s settings: n samples at T = 1, greedy);
    calculator  every time the model writes `=` after a step `a op b`, the sampler writes the true
                value and the model goes on from there, as GSM8K's calculator annotations do at
                sampling time (Cobbe et al. 2021). The model still chooses every pair and
                operation, and when to stop: after a value it draws `;` (another step) or
                `</answer>` from its own probabilities of those two; a step whose value is not a
                positive integer (an inexact division, a negative difference) ends the chain there.

If the calculator arm's pass@k is far above the plain arm's and above chance, the model plans and
only computes badly: a tool-using policy is the next countdown lever. If not, it lacks the planning
too. No training, dev problems only (levels 3-4 of builtin:countdown-dev).

    python bench/countdown_calculator.py --policy tiny:DIR --out bench/results-dev/countdown-calculator.json

Prints a table (mean ± std over seeds), writes JSON and a plot of pass@k.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from precondition import KS, curve, problem_sets, sample_counts  # noqa: E402

LAST_STEP = re.compile(r"(?<![\d.])(\d{1,7})([-+*/])(\d{1,7})$")  # the step the model just wrote, before its "="
MAX_ROUNDS = 12  # steps a chain may take (a six-number problem needs five)
BATCH = 512  # prompts per generate call


def calculate(step_text: str) -> int | None:
    """The value of the last step `a op b` of a chain written so far, when it is a positive integer;
    None when the text does not end in a step or its value is not a positive integer."""
    found = LAST_STEP.search(step_text)
    if not found:
        return None
    a, op, b = int(found.group(1)), found.group(2), int(found.group(3))
    if op == "/" and b == 0:
        return None
    value = {"+": Fraction(a + b), "-": Fraction(a - b), "*": Fraction(a * b), "/": Fraction(a, b) if b else None}[op]
    return int(value) if value is not None and value.denominator == 1 and value > 0 else None


def _separator_choices(policy: Any, prefixes: list[str], temperature: float, rng: random.Random) -> list[bool]:
    """For each chain just given a calculator value, whether the model goes on (`;`) rather than ends
    (`</answer>`): drawn from its own probabilities of those two tokens, renormalised, at
    `temperature` (0: the likelier one). Without this the model would often keep writing digits
    after the value, as it would after its own value of the step."""
    import math

    semi, end = policy.tokenizer.encode(";"), policy.tokenizer.encode("</answer>")
    if len(semi) != 1 or len(end) != 1:
        raise ValueError("the calculator needs ';' and '</answer>' to be one token each")
    prompt_ids = policy.encode_prompts(prefixes)
    import torch

    with torch.no_grad():
        scored = policy.logprobs(prompt_ids * 2, [semi] * len(prefixes) + [end] * len(prefixes))
    logp = scored.logprobs.sum(-1).tolist()
    out = []
    for i in range(len(prefixes)):
        go, stop = logp[i], logp[len(prefixes) + i]
        if temperature == 0:
            out.append(go >= stop)
        else:
            p_go = 1.0 / (1.0 + math.exp(max(-50.0, min(50.0, (stop - go) / temperature))))
            out.append(rng.random() < p_go)
    return out


def calculator_sample(policy: Any, prompts: list[str], temperature: float, seed: int,
                      max_new_tokens: int = 96) -> tuple[list[str], dict[str, int]]:
    """One chain per prompt, sampled with the calculator (see the module docstring). Returns the
    chains and counts of how they ended: `stopped` (the model ended it), `bad_step` (a step the
    calculator could not value), `too_long` (MAX_ROUNDS steps or the token budget)."""
    from rungs.policies.base import SamplingParams

    eq = policy.tokenizer.encode("=")
    if len(eq) != 1:
        raise ValueError("the calculator needs '=' to be one token of the policy's tokenizer")
    rng = random.Random(f"separators:{seed}")
    texts = [""] * len(prompts)
    live = list(range(len(prompts)))
    ends = {"stopped": 0, "bad_step": 0, "too_long": 0}
    for round_ in range(MAX_ROUNDS):
        if not live:
            break
        valued = []
        for start in range(0, len(live), BATCH):
            rows = live[start:start + BATCH]
            sampling = SamplingParams(temperature=temperature, max_new_tokens=max_new_tokens, stop=("=",),
                                      seed=seed * 100_003 + round_ * 1_009 + start)
            groups = policy.generate([prompts[r] + texts[r] for r in rows], n=1, sampling=sampling)
            for r, (c,) in zip(rows, groups):
                at_eq = bool(c.token_ids) and c.token_ids[-1] == eq[0] and c.finish_reason == "stop"
                texts[r] += c.text
                if not at_eq:
                    ends["stopped" if c.finish_reason == "stop" else "too_long"] += 1
                    continue
                value = calculate(texts[r])
                if value is None:
                    texts[r] += "="
                    ends["bad_step"] += 1
                    continue
                texts[r] += f"={value}"
                valued.append(r)
        live = []
        for start in range(0, len(valued), BATCH):
            rows = valued[start:start + BATCH]
            for r, go_on in zip(rows, _separator_choices(policy, [prompts[r] + texts[r] for r in rows], temperature, rng)):
                if go_on:
                    texts[r] += ";"
                    live.append(r)
                else:
                    texts[r] += "</answer>"
                    ends["stopped"] += 1
    ends["too_long"] += len(live)
    return texts, ends


def calculator_counts(policy: Any, task: Any, pool: Any, problems: list[Any], n: int, temperature: float,
                      seed: int) -> tuple[list[int], list[bool], dict[str, int]]:
    """(right chains out of n, greedy right, how the sampled chains ended) per problem, with the calculator."""
    prompts = [task.prompt(p, policy.prompt_style) for p in problems]
    greedy_texts, _ = calculator_sample(policy, prompts, 0.0, seed)
    greedy = [v.correct for v in pool.verify(problems, greedy_texts)]
    texts, ends = calculator_sample(policy, [p for p in prompts for _ in range(n)], temperature, seed)
    verdicts = pool.verify([p for p in problems for _ in range(n)], texts)
    counts = [sum(v.correct for v in verdicts[i * n:(i + 1) * n]) for i in range(len(problems))]
    return counts, greedy, ends


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", required=True, help="tiny:DIR, a worked-chain countdown model (--answer-format steps)")
    ap.add_argument("--n", type=int, default=64, help="samples per problem and seed")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--chance", default=None, help="a bench/countdown_chance.py JSON, to print chance's dev row beside")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=None, help="JSON here, and a .png beside it")
    args = ap.parse_args(argv)
    if args.n < 1 or args.seeds < 1:
        ap.error("--n and --seeds must be >= 1")

    import torch

    from rungs.policies import load_policy
    from rungs.report import fmt_mean_std, print_table
    from rungs.tasks import get_task
    from rungs.verify.pool import VerifierPool

    torch.set_num_threads(1)
    task = get_task("countdown")
    problems = problem_sets("countdown", ["dev"], "builtin:countdown-hard", 0)["dev"]
    arms: dict[str, list[dict[str, Any]]] = {"plain": [], "calculator": []}
    ends: list[dict[str, int]] = []
    t0 = time.process_time()
    with VerifierPool(task, workers=args.workers) as pool:
        for seed in range(args.seeds):
            policy = load_policy(args.policy, task="countdown", seed=seed)
            counts, greedy = sample_counts(policy, task, pool, problems, args.n, args.temperature, seed)
            arms["plain"].append(curve(counts, greedy, args.n))
            counts, greedy, how = calculator_counts(policy, task, pool, problems, args.n, args.temperature, seed)
            arms["calculator"].append(curve(counts, greedy, args.n))
            ends.append(how)
            print(f"seed {seed}: pass@{args.n} plain {arms['plain'][-1]['solved_at_least_once']:.3f}, calculator "
                  f"{arms['calculator'][-1]['solved_at_least_once']:.3f} ({time.process_time() - t0:.0f} CPU s)",
                  file=sys.stderr, flush=True)

    ks = [k for k in KS if k <= args.n]
    result: dict[str, Any] = {"policy": args.policy, "problems": len(problems), "n": args.n, "seeds": args.seeds,
                              "temperature": args.temperature, "arms": {}, "calculator_chain_ends": ends}
    rows = []
    for arm, curves in arms.items():
        mean = {k: statistics.mean(c["pass@k"][k] for c in curves) for k in ks}
        std = {k: statistics.pstdev(c["pass@k"][k] for c in curves) for k in ks}
        greedy = [c["greedy"] for c in curves]
        result["arms"][arm] = {"pass@k_mean": mean, "pass@k_std": std, "greedy": greedy}
        rows.append({"arm": arm, "greedy": fmt_mean_std(statistics.mean(greedy), statistics.pstdev(greedy)),
                     **{f"pass@{k}": fmt_mean_std(mean[k], std[k]) for k in (1, 8, 64) if k in mean}})
    if args.chance:
        chance = json.loads(Path(args.chance).read_text(encoding="utf-8"))["sets"]["dev"]["arms"]
        for arm in ("chance-any", "chance-integer"):
            m, s = chance[arm]["pass@k_mean"], chance[arm]["pass@k_std"]
            rows.append({"arm": arm, "greedy": "-", **{f"pass@{k}": fmt_mean_std(m[str(k)], s[str(k)])
                                                      for k in (1, 8, 64) if str(k) in m}})
    print_table(rows, ["arm", "greedy"] + [f"pass@{k}" for k in (1, 8, 64) if k <= args.n],
                title=f"countdown dev L3-4 ({len(problems)}): {args.policy} with and without a calculator "
                      f"(n = {args.n}, {args.seeds} seeds, T = {args.temperature})")
    total = {key: sum(e[key] for e in ends) for key in ends[0]}
    print(f"calculator chains ended: {total}")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.8))
        from countdown_chance import pass_at_k_axes

        pass_at_k_axes(ax, result["arms"])
        ax.set_title(f"Countdown dev pass@k of a worked-chain model, with and without a calculator\n({args.policy}, "
                     f"{args.seeds} seeds, T={args.temperature})", fontsize=9)
        fig.tight_layout()
        fig.savefig(out.with_suffix(".png"), dpi=120)
        print(f"wrote {out} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    import bench_cli

    bench_cli.run(main, "countdown_calculator")
