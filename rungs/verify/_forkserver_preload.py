"""The first module the verifier pool's fork server imports: it makes preloading work.

Python 3.11-3.12's fork server ignores the parent's `sys.path` and main script (its `__main__`
preload entry is a no-op there), so every worker would re-run the main script and re-import
everything it imports: torch and transformers in a training script, seconds per worker restart.
`rungs.verify.pool.start_forkserver` passes both through the environment; this module applies
them inside the fork server, so workers are forked with all of it already imported. It also
pins the numeric libraries to one thread before anything imports them.
"""

from __future__ import annotations

import json
import os
import sys

SYS_PATH_ENV = "RUNGS_FORKSERVER_SYS_PATH"
MAIN_PATH_ENV = "RUNGS_FORKSERVER_MAIN_PATH"
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def _in_fork_server() -> bool:
    # The fork server runs `python -c "from multiprocessing.forkserver import main; main(...)"`.
    return SYS_PATH_ENV in os.environ and "multiprocessing.forkserver" in sys.modules


def _setup() -> None:
    for var in THREAD_VARS:
        os.environ[var] = "1"
    path = json.loads(os.environ.pop(SYS_PATH_ENV))
    sys.path[:] = path + [p for p in sys.path if p not in path]
    main_path = os.environ.pop(MAIN_PATH_ENV, None)
    if main_path:
        from multiprocessing import process, spawn

        # As the fork server does when it can: import the script as __mp_main__, with an
        # unguarded Process.start() at its top level refused rather than recursing.
        process.current_process()._inheriting = True
        try:
            spawn.import_main_path(main_path)
        except (Exception, SystemExit):  # noqa: BLE001 - workers will re-run it and fail visibly
            pass
        finally:
            del process.current_process()._inheriting


if _in_fork_server():
    _setup()
