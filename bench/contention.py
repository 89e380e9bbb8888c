"""CPU time of one fixed rungs job, on a quiet machine and beside a CPU hog: old threads vs new.

    python bench/contention.py                  # both behaviours, idle and beside 1 hog
    python bench/contention.py --hogs 2 --steps 4
    python bench/contention.py --modes new      # only the current behaviour

Why: a job used to start one torch thread per core whose OpenMP threads spin while waiting; beside
another CPU-bound process they fought it for the cores and the demo's CPU time swung 12x with the
machine's load (issue 9, item 11). rungs now sizes torch threads and verifier workers to the cores
free at start and lets idle OpenMP threads sleep (rungs/threads.py); `--threads 0` keeps the old
behaviour, which is how this script runs the "old" arm.

What it does, per arm (old = `--threads 0`, new = the default): runs the same short GRPO job
(`rungs train`, the shipped tiny integration model, fixed seed, no dynamic sampling) once with the
machine as it is ("idle") and once beside `--hogs` busy-loop processes started by this script
("contended"), and measures the CPU time of the job's whole process tree (the job, its forkserver
and verifier workers), polled with psutil where installed, else resource.getrusage of waited
children (which misses the verifier workers). Printed: CPU seconds and wall seconds per run, and
the ratio contended / idle per arm: the goal is a ratio within 1.5 for the new behaviour.

The "idle" run is only as idle as the machine: on a shared machine it runs beside everyone else's
work, which the table reports (the 1-minute load average before each run).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # bench_cli beside this file, also when loaded by path (the tests)
    sys.path.insert(0, str(HERE))
import bench_cli  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent


def job_argv(out: Path, steps: int, threads: int | None) -> list[str]:
    """The fixed job: a few GRPO steps of the shipped tiny integration model."""
    argv = [sys.executable, "-m", "rungs.cli", "train", "--task", "integration", "--problems", "builtin:integration-train",
            "--policy", "tiny:integration", "--max-steps", str(steps), "--prompts-per-step", "4", "--num-generations", "8",
            "--max-completion-length", "64", "--temperature", "1.2", "--dynamic-sampling", "off", "--save-steps", "0",
            "--seed", "0", "--no-progress", "--no-plot", "--out", str(out)]
    if threads is not None:
        argv += ["--threads", str(threads)]
    return argv


def tree_cpu_seconds(argv: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(CPU seconds of the process tree, wall seconds, exit status) of running `argv`."""
    try:
        import psutil
    except ImportError:
        psutil = None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen: dict[int, float] = {}
    if psutil is not None:
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            for p in procs:
                try:
                    t = p.cpu_times()
                    seen[p.pid] = t.user + t.system
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass
            time.sleep(0.2)
    _, err = proc.communicate()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    waited = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        sys.stderr.write(err.decode(errors="replace")[-2000:])
    # The job's own total is exact from getrusage; psutil adds the descendants it never waited for.
    cpu = max(waited, sum(seen.values())) if seen else waited
    return cpu, wall, proc.returncode


def start_hogs(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.kill()
    for p in procs:
        p.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=bench_cli.positive, default=3, help="GRPO steps of the fixed job (default 3)")
    parser.add_argument("--hogs", type=bench_cli.non_negative, default=1, help="busy-loop processes beside the contended run (default 1)")
    parser.add_argument("--modes", type=bench_cli.names_list(("old", "new"), "modes"), default="old,new",
                        help="comma-separated behaviours to measure: old (--threads 0: one thread per core, spinning), "
                             "new (rungs' default threads) (default: old,new)")
    args = parser.parse_args(argv)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY"):
        env.pop(key, None)  # let each arm choose its threads as a user's shell would
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode in args.modes:
            threads = 0 if mode == "old" else None
            result = {"mode": mode}
            for where in ("idle", "contended"):
                hogs = start_hogs(args.hogs) if where == "contended" else []
                try:
                    if hogs:
                        time.sleep(1.0)  # the hogs are running when the job sizes itself
                    load = os.getloadavg()[0]
                    cpu, wall, status = tree_cpu_seconds(job_argv(Path(tmp) / f"{mode}-{where}", args.steps, threads), env)
                finally:
                    stop(hogs)
                if status != 0:
                    print(f"{mode}/{where}: the job failed (exit {status})", file=sys.stderr)
                    return 1
                result[where] = (cpu, wall, load)
                print(f"{mode:>4} {where:>9}: {cpu:7.1f} s CPU  {wall:7.1f} s wall  (load before: {load:.1f})", flush=True)
            result["ratio"] = result["contended"][0] / result["idle"][0]
            rows.append(result)
    print(f"\nCPU time of `rungs train` ({args.steps} steps, tiny:integration), contended ({args.hogs} busy-loop "
          f"process{'es' if args.hogs != 1 else ''}) / idle, {os.cpu_count()} CPUs:")
    for r in rows:
        name = "old (--threads 0: a thread per core, spinning)" if r["mode"] == "old" else "new (free cores, sleeping waits)"
        print(f"  {name:<48} {r['idle'][0]:7.1f} s -> {r['contended'][0]:7.1f} s   ratio {r['ratio']:.2f}")
    return 0


if __name__ == "__main__":
    bench_cli.run(main, "contention")
