"""Integration verifier vs a plain sympy checker: throughput and accuracy, measured in one run.

    python bench/verify.py                 # the whole external set: 1,428 references + 1,428 wrong
    python bench/verify.py --limit 200     # a quick run on the first 200 rows
    python bench/verify.py --executor ray  # also rungs on Ray actors, beside the process pool

The data: ../shared/data/integration_variants_external.jsonl (1,428 LLM-written integrals with
sympy-computed antiderivatives, written by no one on this team). Each row gives two items: the
reference answer (should be accepted) and a perturbed reference that is certainly wrong (scaled
by a factor != 1, plus c*x or c*x**2, or negated; seeded, the same as the external test).

The peer is what a researcher would write first: `simplify(diff(F, x) - f) == 0`, parsing with
sympy's parse_expr (fine here: the data is trusted; rungs never parse_exprs model text). Both run
in the same kind of pool, a `VerifierPool` of `--workers` processes with a `--timeout` per item,
started and warmed up before the clock starts, so the ratio compares checkers and nothing else.
A timeout counts as "not accepted".

With `--executor ray` (or `ray:ADDRESS`) rungs' verifier runs a second time on a `RayExecutor`
with the same worker count and timeout (a local Ray with --workers CPUs unless an address is
given), and its throughput is printed beside the process pool's, as a ratio; verdicts must agree.

Figures printed: verifications per second, accept rate on references, reject rate on perturbed
references, timeouts; each over all rows, over the rows whose problem is in rungs' grammar (14
problems use `diff(...)`, `.expand()`, `.diff(x)` or `factorial`, which rungs' safe parser
refuses), and over the rows whose reference is in it too (5 references use gamma, fresnels, Shi
or RootSum, which the answer whitelist refuses).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from pathlib import Path

from rungs.tasks.integration.perturb import perturb

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # bench_cli beside this file, also when loaded by path (the tests)
    sys.path.insert(0, str(HERE))
import bench_cli  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "integration_variants_external.jsonl"


def plain_check(item: tuple[str, str]) -> bool:
    """The peer: simplify(diff(F, x) - f) == 0, with sympy's own parser (trusted data only)."""
    import sympy
    from sympy.parsing.sympy_parser import convert_xor, parse_expr, standard_transformations

    problem, answer = item
    match = re.fullmatch(r"\s*integrate\((.*),\s*x\s*\)\s*", problem, flags=re.DOTALL)
    if match is None:
        return False
    x = sympy.Symbol("x")
    transformations = (*standard_transformations, convert_xor)
    f = parse_expr(match.group(1), local_dict={"x": x}, transformations=transformations)
    F = parse_expr(answer, local_dict={"x": x}, transformations=transformations)
    return sympy.simplify(sympy.diff(F, x) - f) == 0


def load_items(path: Path, limit: int | None, seed: int) -> list[dict]:
    from rungs.data import iter_jsonl

    rows = [row for _, row in iter_jsonl(path)]
    rows = rows[:limit] if limit else rows
    rng = random.Random(seed)
    items = []
    for i, row in enumerate(rows):
        items.append({"row": i, "problem": row["problem"], "answer": row["answer"], "reference": True})
        items.append({"row": i, "problem": row["problem"], "answer": perturb(row["answer"], rng), "reference": False})
    return items


def summarize(name: str, accepted: list[bool], timeouts: list[bool], items: list[dict], seconds: float,
              in_grammar: set[int], readable: set[int]) -> dict:
    def rates(keep: set[int] | None) -> tuple[float, float, int]:
        sel = [(a, it) for a, it in zip(accepted, items) if keep is None or it["row"] in keep]
        refs = [a for a, it in sel if it["reference"]]
        wrong = [a for a, it in sel if not it["reference"]]
        return (sum(refs) / max(1, len(refs)), 1 - sum(wrong) / max(1, len(wrong)), len(refs))

    accept_all, reject_all, rows_all = rates(None)
    accept_in, reject_in, rows_in = rates(in_grammar)
    accept_rd, reject_rd, rows_rd = rates(readable)
    return {
        "checker": name, "items": len(items), "seconds": seconds, "per_second": len(items) / seconds,
        "accept_refs": accept_all, "reject_perturbed": reject_all, "rows": rows_all,
        "accept_refs_in_grammar": accept_in, "reject_perturbed_in_grammar": reject_in, "rows_in_grammar": rows_in,
        "accept_refs_readable": accept_rd, "reject_perturbed_readable": reject_rd, "rows_readable": rows_rd,
        "timeouts": sum(timeouts),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="external JSONL (problem, answer)")
    parser.add_argument("--limit", type=bench_cli.positive, default=None, help="use only the first N rows (default: all)")
    parser.add_argument("--workers", type=bench_cli.positive, default=2, help="worker processes per pool")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per item, both checkers")
    parser.add_argument("--seed", type=int, default=0, help="seed of the perturbations")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--executor", default="process", help="process, or also ray / ray:ADDRESS (see above)")
    args = parser.parse_args(argv)
    if args.executor != "process" and not args.executor.startswith("ray"):  # before any measurement
        parser.error(f"argument --executor: {args.executor!r}: expected process, ray or ray:ADDRESS")
    if args.json:  # before the measurement, not after it
        bench_cli.writable_parent(args.json, "--json")
    if not args.data.exists():
        print(f"external data not found at {args.data} (pass --data)", file=sys.stderr)
        return 2

    from rungs.errors import UnsafeExpression, UserError
    from rungs.tasks.integration import IntegrationTask, parse_integral
    from rungs.tasks.integration.verify import parse_answer
    from rungs.types import Problem, Status
    from rungs.verify.pool import VerifierPool
    from rungs.verify.safe_expr import ExpressionSyntaxError

    items = load_items(args.data, args.limit, args.seed)
    in_grammar, readable = set(), set()  # problem parses; problem and reference both parse
    for it in items:
        try:
            parsed = parse_integral(it["problem"])
            in_grammar.add(it["row"])
            if it["reference"]:
                parse_answer(it["answer"], str(parsed.var))
                readable.add(it["row"])
        except (UserError, ExpressionSyntaxError, UnsafeExpression):
            pass
    problems = [Problem(f"r{it['row']}", it["problem"]) for it in items]
    answers = [it["answer"] for it in items]
    task = IntegrationTask()
    warm = min(4, len(items))

    print(f"{len(items)} items ({len(items) // 2} rows x reference/perturbed), {args.workers} workers, "
          f"{args.timeout:g} s timeout", flush=True)
    with VerifierPool(task, workers=args.workers, timeout_s=args.timeout) as pool:
        pool.verify_answers(problems[:warm], answers[:warm])  # start the workers before the clock
        start = time.perf_counter()
        verdicts = pool.verify_answers(problems, answers)
        ours_s = time.perf_counter() - start
    ours = summarize("rungs (derivative)", [v.correct for v in verdicts], [v.status is Status.TIMEOUT for v in verdicts],
                     items, ours_s, in_grammar, readable)
    print(f"  rungs done in {ours_s:.1f} s", flush=True)
    on_ray = None
    if args.executor != "process":
        if not args.executor.startswith("ray"):
            print(f"--executor {args.executor!r}: expected process, ray or ray:ADDRESS", file=sys.stderr)
            return 2
        if args.executor == "ray":
            import ray

            ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
        with VerifierPool(task, workers=args.workers, timeout_s=args.timeout, executor=args.executor) as pool:
            pool.verify_answers(problems[:warm], answers[:warm])  # start the actors before the clock
            start = time.perf_counter()
            ray_verdicts = pool.verify_answers(problems, answers)
            ray_s = time.perf_counter() - start
        on_ray = summarize("rungs (derivative) on Ray", [v.correct for v in ray_verdicts],
                           [v.status is Status.TIMEOUT for v in ray_verdicts], items, ray_s, in_grammar, readable)
        differ = sum(a.correct != b.correct for a, b in zip(verdicts, ray_verdicts))
        print(f"  ray done in {ray_s:.1f} s; verdicts differing from the process pool: {differ}", flush=True)

    pairs = [(it["problem"], it["answer"]) for it in items]
    with VerifierPool(task, workers=args.workers, timeout_s=args.timeout) as pool:
        pool.map(plain_check, pairs[:warm])
        start = time.perf_counter()
        results = pool.map(plain_check, pairs)
        plain_s = time.perf_counter() - start
    plain = summarize("sympy simplify(diff(F) - f) == 0", [r.ok and r.value is True for r in results],
                      [r.status == "timeout" for r in results], items, plain_s, in_grammar, readable)
    print(f"  plain done in {plain_s:.1f} s", flush=True)

    header = f"{'checker':34s} {'verif/s':>8s} {'accept refs':>12s} {'reject wrong':>13s} {'timeouts':>9s}"
    print()
    scopes = (("all rows", ""), ("rows whose problem is in rungs' grammar", "_in_grammar"),
              ("rows whose problem and reference are both in rungs' grammar", "_readable"))
    for scope, suffix in scopes:
        print(f"{scope} ({ours['rows' + suffix]} rows)")
        print(header)
        for r in (ours, plain) if on_ray is None else (ours, on_ray, plain):
            print(f"{r['checker']:34s} {r['per_second']:8.1f} {r['accept_refs' + suffix]:12.2%} "
                  f"{r['reject_perturbed' + suffix]:13.2%} {r['timeouts']:9d}")
        print()
    ratio = ours["per_second"] / plain["per_second"]
    print(f"throughput ratio rungs / plain: {ratio:.1f}x")
    if on_ray is not None:
        print(f"throughput ratio rungs on Ray / rungs on processes: {on_ray['per_second'] / ours['per_second']:.2f}x "
              f"({args.workers} workers each)")
    rejected_refs = [(it["row"], v.status.value, v.detail[:100]) for it, v in zip(items, verdicts)
                     if it["reference"] and not v.correct]
    if rejected_refs:
        print(f"references rungs did not accept ({len(rejected_refs)}):")
        for row, status, detail in rejected_refs:
            print(f"  row {row}: {status}: {detail}")
    if args.json:
        args.json.write_text(json.dumps({"rungs": ours, "plain": plain, "ratio": ratio, "rungs_ray": on_ray}, indent=2))
    return 0


if __name__ == "__main__":
    bench_cli.run(main, "verify")
