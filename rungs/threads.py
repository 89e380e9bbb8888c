"""CPU threads sized to the cores actually free, so a job costs the same CPU time on a busy machine.

Why: torch's intra-op pool (OpenMP) starts one thread per core, and OpenMP threads spin while they
wait for work. Beside another CPU-bound process those threads fight for the same cores and spin
through their time slices: the demo used 790 s of CPU on a busy 2-core machine against 64 s idle.
So a job (`rungs demo|train|ladder|ttrl|eval`) sizes itself once, at start:

- cores: the CPUs this process may run on (`os.sched_getaffinity`), minus those busy with other
  work: the larger of the 1-minute load average and a 0.2 s sample of /proc/stat (the load
  average lags a process started seconds ago), rounded, at least 1;
- torch intra-op threads = that many, and idle OpenMP threads sleep (OMP_WAIT_POLICY=PASSIVE,
  set before torch loads, unless the environment already sets it);
- verifier worker processes default to that many too (`default_workers`).

`--threads N` fixes N instead; `--threads 0` keeps the old behaviour (torch's and the verifier
pool's own defaults, one per core, spinning threads). bench/contention.py measures the effect.
"""

from __future__ import annotations

import math
import os
import time

_chosen: int | None = None  # set by configure_threads; read by default_workers


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask; os.cpu_count() where there is none)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _proc_stat() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat; None where it is absent."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = [int(x) for x in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


def busy_cores(sample_s: float = 0.2) -> float:
    """How many cores other work keeps busy now: max(1-minute load average, a /proc/stat sample
    over `sample_s` seconds, scaled to the machine's CPUs). 0.0 where neither can be read."""
    load = 0.0
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        pass
    first = _proc_stat()
    if first is not None and sample_s > 0:
        time.sleep(sample_s)
        second = _proc_stat()
        if second is not None and second[1] > first[1]:
            fraction = (second[0] - first[0]) / (second[1] - first[1])
            load = max(load, fraction * (os.cpu_count() or 1))
    return load


def free_cores(sample_s: float = 0.2) -> int:
    """Usable cores not busy with other work, rounded to the nearest integer, at least 1."""
    usable = usable_cores()
    return max(1, min(usable, math.floor(usable - min(busy_cores(sample_s), usable) + 0.5)))


def prepare_environment(threads: int | None) -> None:
    """Before torch loads: let idle OpenMP threads sleep instead of spinning (unless `threads`
    is 0, the old behaviour, or the environment already chose a wait policy)."""
    if threads != 0:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def configure_threads(threads: int | None = None) -> int:
    """Size torch's intra-op threads and the default verifier workers; returns the count chosen.

    threads: None = the free cores now (`free_cores`); N >= 1 = exactly N; 0 = leave torch and the
    pool at their own defaults (one per core) and return that count. Imports torch (call it in a
    job, not in `rungs --help`)."""
    global _chosen
    if threads is not None and threads < 0:
        raise ValueError(f"threads must be >= 0, got {threads}")
    prepare_environment(threads)
    if threads == 0:
        _chosen = None
        return os.cpu_count() or 1
    count = threads or free_cores()
    import torch

    torch.set_num_threads(count)
    _chosen = count
    return count


def default_workers() -> int:
    """Verifier worker processes when none are asked for: the count `configure_threads` chose, else
    one per core."""
    return _chosen or os.cpu_count() or 1
