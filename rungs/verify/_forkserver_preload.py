"""The first module the verifier pool's fork server imports: it makes preloading work.

Python 3.11-3.12's fork server ignores the parent's `sys.path` and main script (its `__main__`
preload entry is a no-op there), so every worker would re-run the main script and re-import
everything it imports: torch and transformers in a training script, seconds per worker restart.
`rungs.verify.pool.start_forkserver` passes both through the environment; this module applies
them inside the fork server, so workers are forked with all of it already imported. It also
pins the numeric libraries to one thread before anything imports them, and ignores Ctrl-C from
the first import on (the workers ignore it too; the parent handles it).
"""

from __future__ import annotations

import json
import os
import signal
import sys

SYS_PATH_ENV = "RUNGS_FORKSERVER_SYS_PATH"
MAIN_PATH_ENV = "RUNGS_FORKSERVER_MAIN_PATH"
MAIN_NAME_ENV = "RUNGS_FORKSERVER_MAIN_NAME"  # `python -m package.module`: its module name
IMPORT_MAIN_ENV = "RUNGS_FORKSERVER_IMPORT_MAIN"  # "1": import the script; "0": only stand in for it
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def _in_fork_server() -> bool:
    # The fork server runs `python -c "from multiprocessing.forkserver import main; main(...)"`.
    return SYS_PATH_ENV in os.environ and "multiprocessing.forkserver" in sys.modules


def _setup() -> None:
    # Ctrl-C reaches the whole process group: the fork server ignores SIGINT once its preloads are
    # imported (multiprocessing.forkserver.main), but not while it imports them (sympy, math_verify:
    # seconds), when a Ctrl-C printed a KeyboardInterrupt traceback beside rungs' own one line.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for var in THREAD_VARS:
        os.environ[var] = "1"
    path = json.loads(os.environ.pop(SYS_PATH_ENV))
    sys.path[:] = path + [p for p in sys.path if p not in path]
    main_path = os.environ.pop(MAIN_PATH_ENV, None)
    main_name = os.environ.pop(MAIN_NAME_ENV, None)
    import_main = os.environ.pop(IMPORT_MAIN_ENV, "1") == "1"
    if main_name:
        _stand_in_for_module(main_name, import_main)
    if main_path:
        from multiprocessing import process, spawn

        # As the fork server does when it can: import the script as __mp_main__, with an
        # unguarded Process.start() at its top level refused rather than recursing.
        process.current_process()._inheriting = True
        try:
            if import_main and os.path.isfile(main_path):
                spawn.import_main_path(main_path)
        except (Exception, SystemExit):  # noqa: BLE001 - a script without a main guard, see below
            pass
        finally:
            del process.current_process()._inheriting
        main = sys.modules.get("__main__")
        if getattr(main, "__file__", None) != main_path:
            # The script was not imported: it has no `if __name__ == "__main__":` guard (the
            # README's snippets), its import failed, or it is not a file (`python -` reads
            # stdin). A worker would then re-run it, and fail. A stand-in
            # __main__ with the script's path tells each worker's start-up that the script is
            # already imported, so workers never run it; only a task or function defined in such
            # a script is then unknown to them (that item fails and says so).
            import types

            stand_in = types.ModuleType("__mp_main__")
            stand_in.__file__ = main_path
            sys.modules["__main__"] = sys.modules["__mp_main__"] = stand_in


def _stand_in_for_module(name: str, import_it: bool) -> None:
    """`python -m NAME`: make the fork server's __main__ the module NAME (imported, if it has a main
    guard; else an empty stand-in with its name), so that a worker's start-up, which runs NAME
    again unless __main__ already is it, finds it there."""
    import importlib
    import importlib.machinery
    import types

    module = None
    if import_it:
        try:
            module = importlib.import_module(name)
        except (Exception, SystemExit):  # noqa: BLE001 - the stand-in below still keeps workers from running it
            module = None
    if module is None:
        module = types.ModuleType("__mp_main__")
        module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    sys.modules["__main__"] = sys.modules["__mp_main__"] = module


if _in_fork_server():
    _setup()
