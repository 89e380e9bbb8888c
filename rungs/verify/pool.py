"""A pool of worker processes that verifies model output with hard time and memory limits.

Why processes, and why this much care: verifiers run sympy, mpmath and Math-Verify on text a model
wrote, and hostile text can make them hang (`2^{2^{2^{99}}}`), allocate without bound, or crash the
interpreter. Python cannot interrupt a thread stuck in C code, and signal-based timeouts only work
on the main thread, so the only limit that always holds is a separate process that is SIGKILLed
when it runs past its deadline. A killed or dead worker is replaced, and only the item it was
working on scores 0 (`Status.TIMEOUT` or `Status.CRASH`); the rest of the batch is unaffected. A
verifier that raises scores 0 with `Status.ERROR` and the exception's first line; nothing the
task does propagates into the training loop.

    with VerifierPool(task, timeout_s=5.0) as pool:
        verdicts = pool.verify(problems, completions)      # raw model text -> task.verify
        verdicts = pool.verify_answers(problems, answers)  # extracted answers -> task.verify_answer
        results = pool.map(make_variants, seeds, timeout_s=2.0)  # any top-level function

How it works:
- Workers are started with the "forkserver" method (else "spawn"): never `fork` a parent that has
  torch's thread pools running. The fork server imports the main script (only if it has an
  `if __name__ == "__main__":` guard: an unguarded script, such as a TRL training snippet, is never
  re-run; its workers get a stand-in), sympy, Math-Verify and the task's module once (see
  `start_forkserver`), so a replacement worker costs a fork (~20 ms
  here) rather than an interpreter start and the script's imports (~0.4 s with sympy, seconds
  with torch). Workers start lazily, as many as the batch needs.
- The task is pickled once and unpickled once in each worker. Each worker is given one item at a
  time and takes the next one when it is free, so a slow item never holds up the others.
- Each worker caps its own address space with RLIMIT_AS at its size after start-up (imports,
  task) plus `memory_mb`; an allocation past it raises MemoryError, which is reported as a crash
  and recycles the worker. Where RLIMIT_AS is unsupported (not Linux) the cap is skipped.
- Workers run single-threaded (OMP/MKL/OpenBLAS variables, and torch if `__main__` imported it),
  ignore Ctrl-C (the parent handles it), and on Linux die with the fork server, which itself
  exits when the parent dies, so no hung worker outlives a killed trainer.

The process machinery is behind a small `Executor` protocol; `RayExecutor` implements it on the
actors of a Ray cluster (`executor="ray"` or `"ray:ADDRESS"`: the same per-item wall-clock limit,
memory cap, timeout/crash verdicts and ordering, with workers on any node). `InlineExecutor` runs everything in the calling process: no
timeouts, no memory cap, no isolation, but `pdb` works; use it only for debugging.
"""

from __future__ import annotations

import collections
import json
import math
import multiprocessing
import multiprocessing.connection as mp_connection
import multiprocessing.forkserver
import os
import pickle
import signal
import sys
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from rungs.errors import UserError
from rungs.tasks.base import Task
from rungs.threads import default_workers
from rungs.types import Problem, Status, Verdict

ResultStatus = Literal["ok", "timeout", "crash", "error"]

# Modules the fork server imports once so that every worker starts with them loaded.
FORKSERVER_PRELOAD = ["sympy", "mpmath", "math_verify"]
# A worker that has not said "ready" this long after it was started is killed.
STARTUP_TIMEOUT_S = 120.0
# This many workers in a row dying before "ready" means workers cannot start at all.
MAX_STARTUP_FAILURES = 3
_DETAIL_CHARS = 300


@dataclass(frozen=True)
class Result:
    """The outcome of one call in a worker: `ok` with its `value`, or why there is no value."""

    status: ResultStatus
    value: Any = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class Executor(Protocol):
    """Runs calls somewhere else, each under a wall-clock limit, and never raises for a call.

    An executor is built with a `state` object (the task) that is shipped to its workers once;
    `run(fn, args, ..., with_state=True)` calls `fn(state, *a)` for each `a` in `args`, otherwise
    `fn(*a)`. Results come back in the order of `args`.
    """

    def run(
        self,
        fn: Callable[..., Any],
        args: Sequence[tuple[Any, ...]],
        timeout_s: float | None,
        *,
        with_state: bool = False,
    ) -> list[Result]: ...

    def close(self) -> None: ...


def one_line(err: BaseException) -> str:
    """`TypeName: first line of the message`, cut to a readable length."""
    message = str(err).strip().splitlines()
    text = f"{type(err).__name__}: {message[0]}" if message else type(err).__name__
    return text if len(text) <= _DETAIL_CHARS else text[: _DETAIL_CHARS - 3] + "..."


class InlineExecutor:
    """Runs every call in the calling process, one after another. For debugging only.

    No isolation: no wall-clock limit (a hanging verifier hangs the caller), no memory cap, and a
    crash takes the caller down. Exceptions are still turned into `error` results.
    """

    def __init__(self, state: Any = None) -> None:
        self.state = state

    def run(
        self,
        fn: Callable[..., Any],
        args: Sequence[tuple[Any, ...]],
        timeout_s: float | None = None,
        *,
        with_state: bool = False,
    ) -> list[Result]:
        results = []
        for a in args:
            try:
                value = fn(self.state, *a) if with_state else fn(*a)
                results.append(Result("ok", value))
            except MemoryError as err:
                results.append(Result("crash", detail=f"out of memory ({one_line(err)})"))
            except Exception as err:  # noqa: BLE001 - a verifier that raises scores 0
                results.append(Result("error", detail=one_line(err)))
        return results

    def close(self) -> None:
        pass


# ----------------------------------------------------------------------------------------------
# Worker side


def _quiet_threads() -> None:
    """One thread per worker: the parallelism is the pool's, not the libraries'."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ[var] = "1"  # for libraries imported from now on
    torch = sys.modules.get("torch")  # imported by __main__ before we got here
    if torch is not None:
        torch.set_num_threads(1)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # already started; harmless
            pass


def _die_with_parent() -> None:
    """Linux: SIGKILL this worker when its parent (the fork server) exits."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _address_space_bytes() -> int:
    """This process's virtual address space size, 0 where /proc is unavailable."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _limit_memory(memory_mb: int | None) -> None:
    """Cap the address space at its current size plus `memory_mb`; skip where unsupported."""
    if memory_mb is None:
        return
    try:
        import resource
    except ImportError:  # not POSIX
        return
    limit = _address_space_bytes() + memory_mb * 2**20
    try:
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ValueError, OSError, AttributeError):  # e.g. macOS rejects or ignores RLIMIT_AS
        pass


def _worker_main(conn: mp_connection.Connection, state_blob: bytes, memory_mb: int | None, orphan_kill: bool) -> None:
    """Loop of one worker: receive (seq, pickled call), run it, send (seq, status, value)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _quiet_threads()
        if orphan_kill:
            _die_with_parent()
        state = pickle.loads(state_blob)
        _limit_memory(memory_mb)
    except BaseException as err:  # noqa: BLE001 - reported to the parent, which raises
        conn.send(("init_error", one_line(err)))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the parent closed its end: shut down
            return
        if message is None:
            return
        seq, blob = message
        try:
            fn, args, with_state = pickle.loads(blob)
            reply = (seq, "ok", fn(state, *args) if with_state else fn(*args))
        except MemoryError:
            # The heap may be in any state after this: report, then exit so we are replaced.
            conn.send((seq, "crash", f"memory limit exceeded (worker capped at +{memory_mb} MB)"))
            return
        except BaseException as err:  # noqa: BLE001 - includes SystemExit from a task
            reply = (seq, "error", one_line(err))
        try:
            conn.send(reply)
        except Exception as err:  # noqa: BLE001 - e.g. an unpicklable return value
            conn.send((seq, "error", f"result could not be sent back: {one_line(err)}"))


# ----------------------------------------------------------------------------------------------
# Parent side


class _Worker:
    """Parent-side handle of one worker process."""

    __slots__ = ("process", "conn", "ready", "job", "seq", "limit", "deadline", "start_deadline")

    def __init__(self, process: Any, conn: mp_connection.Connection) -> None:
        self.process = process
        self.conn = conn
        self.ready = False
        self.job: int | None = None  # index of the item it is working on
        self.seq = 0  # sequence number of that item's message, to drop stale replies
        self.limit = math.inf  # its wall-clock limit in seconds
        self.deadline = math.inf
        self.start_deadline = time.monotonic() + STARTUP_TIMEOUT_S


def _discard(worker: _Worker) -> None:
    """SIGKILL a worker (if alive), reap it, and release its file descriptors."""
    try:
        worker.process.kill()
    except (OSError, ValueError, AttributeError):
        pass
    try:
        worker.process.join(timeout=10)
    except (OSError, ValueError, AssertionError):
        pass
    worker.conn.close()
    try:
        worker.process.close()
    except (ValueError, AttributeError):  # still running after join timed out: leave it
        pass


def _discard_all(workers: list[_Worker], owner_pid: int) -> None:
    if os.getpid() != owner_pid:  # a forked copy of the pool: the workers are the parent's
        workers.clear()
    while workers:
        _discard(workers.pop())


def _exit_reason(exitcode: int | None) -> str:
    if exitcode is None:
        return "unknown exit status"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


def start_forkserver(state: Any) -> None:
    """Start this process's fork server, if it is not running yet, with our modules preloaded.

    A worker re-runs the main script (as `__mp_main__`) unless the fork server already imported
    it, and Python 3.11-3.12's fork server ignores the parent's script and sys.path (its
    `__main__` preload is a no-op there). So the fork server's first import is our
    `_forkserver_preload`, which applies both from the environment we hand it here; then it
    imports sympy, Math-Verify and the task's module. Starting a worker then costs a fork.
    """
    from rungs.verify import _forkserver_preload as preload

    main = sys.modules.get("__main__")
    env = {preload.SYS_PATH_ENV: json.dumps(sys.path)}
    modules = [preload.__name__, *FORKSERVER_PRELOAD]
    spec_name = getattr(getattr(main, "__spec__", None), "name", None)
    if spec_name and not spec_name.endswith("__main__"):  # `python -m package.module`
        # imported by _forkserver_preload as the fork server's __main__ (if guarded), so that each
        # worker's start-up finds it there instead of running the module again
        env[preload.MAIN_NAME_ENV] = spec_name
        origin = getattr(main.__spec__, "origin", None)
        env[preload.IMPORT_MAIN_ENV] = "1" if origin and has_main_guard(origin) else "0"
    elif getattr(main, "__file__", None):  # `python script.py` (or `python -`: "<stdin>")
        start_dir = getattr(multiprocessing.process, "ORIGINAL_DIR", None) or os.getcwd()
        path = os.path.normpath(os.path.join(start_dir, main.__file__))
        env[preload.MAIN_PATH_ENV] = path
        # A script without an `if __name__ == "__main__":` guard (the README's TRL snippets) would
        # run whole in the fork server: model loading, training. Such a script is never imported
        # there; the workers get a stand-in for it instead (see _forkserver_preload).
        env[preload.IMPORT_MAIN_ENV] = "1" if has_main_guard(path) else "0"
    if type(state).__module__ not in ("__main__", "builtins"):
        modules.append(type(state).__module__)
    multiprocessing.set_forkserver_preload(modules)
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)  # read by the fork server at start-up, then restored here
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def has_main_guard(path: str) -> bool:
    """Whether the Python script at `path` has a top-level `if __name__ == "__main__":` block
    (read with `ast`, never run). False for a file that cannot be read or parsed."""
    import ast

    try:
        with open(path, "rb") as f:
            tree = ast.parse(f.read(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return False
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare) and len(node.test.comparators) == 1:
            sides = [node.test.left, node.test.comparators[0]]
            names = [x.id for x in sides if isinstance(x, ast.Name)]
            consts = [x.value for x in sides if isinstance(x, ast.Constant)]
            if names == ["__name__"] and consts == ["__main__"] and isinstance(node.test.ops[0], ast.Eq):
                return True
    return False


def default_start_method() -> str:
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def pickled_state(state: Any, where: str) -> bytes:
    """`state` (a task) pickled once for an executor's workers; a TypeError naming `where` if it cannot be."""
    try:
        return pickle.dumps(state)
    except Exception as err:  # noqa: BLE001 - say what could not be shipped
        raise TypeError(f"{type(state).__name__} cannot be sent to {where}: {one_line(err)}") from err


class ProcessExecutor:
    """Worker processes with a hard per-call wall-clock limit and a per-worker memory cap.

    `workers` defaults to the cores free when the job started (`rungs.threads.default_workers`; one
    per CPU core outside a job); workers are started lazily, only as many as a
    batch has items. Thread-safe: concurrent `run` calls are served one after another.
    """

    def __init__(
        self,
        state: Any = None,
        workers: int | None = None,
        memory_mb: int | None = 2048,
        start_method: str | None = None,
    ) -> None:
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if memory_mb is not None and memory_mb <= 0:
            raise ValueError(f"memory_mb must be > 0 or None, got {memory_mb}")
        if getattr(multiprocessing.process.current_process(), "_inheriting", False):
            # the fork server is importing a script that calls rungs at its top level: stop that
            # import here instead of starting a fork server inside the fork server
            raise RuntimeError("a verifier pool cannot start while the main script is imported for its workers")
        self.workers = workers or default_workers()  # the cores free at the job's start (rungs.threads)
        self.memory_mb = memory_mb
        self.start_method = start_method or default_start_method()
        self._state_blob = pickled_state(state, "worker processes")
        self._ctx = multiprocessing.get_context(self.start_method)
        if self.start_method == "forkserver":
            start_forkserver(state)  # a no-op if this process already has one
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._seq = 0
        self._startup_failures = 0
        self._closed = False
        self.stats: collections.Counter[str] = collections.Counter()
        self._owner_pid = os.getpid()
        # Reap the workers even if close() is never called.
        self._finalizer = weakref.finalize(self, _discard_all, self._workers, self._owner_pid)

    # -- lifecycle ----------------------------------------------------------------------------
    def _spawn(self) -> _Worker:
        parent_conn, child_conn = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(
            target=_worker_main,
            args=(child_conn, self._state_blob, self.memory_mb, self.start_method == "forkserver"),
            name="rungs-verifier",
            daemon=True,
        )
        try:
            process.start()
        finally:
            child_conn.close()  # the child has its own copy now
        self.stats["started"] += 1
        return _Worker(process, parent_conn)

    def _replace(self, index: int) -> None:
        _discard(self._workers[index])
        self._workers[index] = self._spawn()

    def close(self) -> None:
        """Kill and reap every worker. Idempotent."""
        with self._lock:
            self._closed = True
            _discard_all(self._workers, self._owner_pid)

    def pids(self) -> list[int]:
        """Process ids of the live workers (for tests and monitoring)."""
        return [w.process.pid for w in self._workers if w.process.pid is not None]

    # -- running ------------------------------------------------------------------------------
    def run(
        self,
        fn: Callable[..., Any],
        args: Sequence[tuple[Any, ...]],
        timeout_s: float | None,
        *,
        with_state: bool = False,
    ) -> list[Result]:
        """Run `fn` on every tuple of `args` in the workers; results in order, never raising for a call."""
        limit = math.inf if timeout_s is None else float(timeout_s)
        with self._lock:
            if self._closed:
                raise RuntimeError("the verifier pool is closed")
            if os.getpid() != self._owner_pid:
                raise RuntimeError("this verifier pool belongs to the process that created it; make a new one here")
            results: list[Result | None] = [None] * len(args)
            pending = collections.deque(range(len(args)))
            while len(self._workers) < min(len(args), self.workers):
                self._workers.append(self._spawn())
            try:
                while pending or any(w.job is not None for w in self._workers):
                    self._dispatch(pending, fn, args, with_state, limit, results)
                    self._wait_and_collect(results, pending)
            except BaseException:
                # Interrupted (Ctrl-C) or a start-up failure: busy workers hold stale items.
                keep = []
                for w in self._workers:
                    if w.job is None and w.ready:
                        keep.append(w)
                    else:
                        _discard(w)
                self._workers[:] = keep  # the same list object: the finalizer holds it
                raise
            self.stats["items"] += len(args)
            return results  # type: ignore[return-value]

    def _dispatch(
        self,
        pending: collections.deque[int],
        fn: Callable[..., Any],
        args: Sequence[tuple[Any, ...]],
        with_state: bool,
        limit: float,
        results: list[Result | None],
    ) -> None:
        """Give the next pending item to every idle, ready worker."""
        for index, w in enumerate(self._workers):
            while pending and w.ready and w.job is None:
                item = pending.popleft()
                try:
                    blob = pickle.dumps((fn, args[item], with_state))
                except Exception as err:  # noqa: BLE001 - this item cannot be shipped; the worker is fine
                    results[item] = Result("error", detail=f"could not send the call to a worker: {one_line(err)}")
                    continue
                self._seq += 1
                try:
                    w.conn.send((self._seq, blob))
                except OSError:  # the worker died while idle: not this item's fault
                    pending.appendleft(item)
                    self.stats["restarts"] += 1
                    self._replace(index)
                    break
                w.job, w.seq, w.limit, w.deadline = item, self._seq, limit, time.monotonic() + limit

    def _wait_and_collect(self, results: list[Result | None], pending: collections.deque[int]) -> None:
        """Wait for a reply, a death or a deadline, whichever comes first, and handle it."""
        now = time.monotonic()
        wake = min(
            [w.deadline for w in self._workers if w.job is not None]
            + [w.start_deadline for w in self._workers if not w.ready],
            default=math.inf,
        )
        timeout = None if wake == math.inf else max(0.0, wake - now)
        handles: list[Any] = [w.conn for w in self._workers] + [w.process.sentinel for w in self._workers]
        ready = set(mp_connection.wait(handles, timeout))
        now = time.monotonic()
        for index in range(len(self._workers)):
            w = self._workers[index]
            if w.conn in ready:
                self._receive(index, results)
            elif w.process.sentinel in ready:
                self._on_death(index, results)
            elif w.job is not None and now >= w.deadline:
                if w.conn.poll():  # the reply made it in just at the deadline: take it
                    self._receive(index, results)
                    continue
                results[w.job] = Result("timeout", detail=f"ran past its {w.limit:g} s limit and was killed")
                self.stats["timeouts"] += 1
                self.stats["restarts"] += 1
                self._replace(index)
            elif not w.ready and now >= w.start_deadline:
                self._startup_failed(index, f"did not start within {STARTUP_TIMEOUT_S:.0f} s")

    def _receive(self, index: int, results: list[Result | None]) -> None:
        w = self._workers[index]
        try:
            message = w.conn.recv()
        except (EOFError, OSError):
            self._on_death(index, results)
            return
        except Exception as err:  # noqa: BLE001 - the reply could not be unpickled here
            if w.job is not None:
                results[w.job] = Result("error", detail=f"could not read the worker's reply: {one_line(err)}")
                w.job, w.deadline = None, math.inf
            return
        if message[0] == "ready":
            w.ready = True
            self._startup_failures = 0
            return
        if message[0] == "init_error":
            raise RuntimeError(f"a verifier worker could not start: {message[1]}")
        seq, status, payload = message
        if w.job is None or seq != w.seq:
            return  # a stale reply (cannot happen in normal operation)
        if status == "ok":
            results[w.job] = Result("ok", payload)
        else:
            results[w.job] = Result(status, detail=payload)
            self.stats[f"{status}s" if status != "crash" else "crashes"] += 1
        w.job, w.deadline = None, math.inf
        if status == "crash":  # the worker exits after a MemoryError
            self.stats["restarts"] += 1
            self._replace(index)

    def _on_death(self, index: int, results: list[Result | None]) -> None:
        w = self._workers[index]
        w.process.join(timeout=10)
        reason = _exit_reason(w.process.exitcode)
        if not w.ready:
            self._startup_failed(index, f"died during start-up ({reason})")
            return
        if w.job is not None:
            results[w.job] = Result("crash", detail=f"the verifier process died ({reason})")
            self.stats["crashes"] += 1
        self.stats["restarts"] += 1
        self._replace(index)

    def _startup_failed(self, index: int, why: str) -> None:
        self._startup_failures += 1
        self._replace(index)
        if self._startup_failures >= MAX_STARTUP_FAILURES:
            raise RuntimeError(
                f"verifier workers keep failing to start: the last one {why}; "
                f"check that the task can be imported in a fresh process (a task defined in the main script needs "
                f"an `if __name__ == \"__main__\":` guard there) and that memory_mb={self.memory_mb} is enough"
            )


# ----------------------------------------------------------------------------------------------
# Ray: the same contract on the actors of a Ray cluster (one machine or many)

# Seconds to wait for a TCP answer from a Ray address before saying it does not answer.
RAY_CONNECT_TIMEOUT_S = 5.0


class _RayWorker:
    """Body of one Ray verifier actor: a dedicated process, like a ProcessExecutor worker.

    It runs single-threaded, caps its own address space at its size after start-up plus
    `memory_mb` (safe: the actor process does nothing else), and exits after a MemoryError so the
    driver replaces it. Calls arrive as pickled (fn, args, with_state) blobs, as in `_worker_main`.
    """

    def __init__(self, state_blob: bytes, memory_mb: int | None) -> None:
        _quiet_threads()
        self.state = pickle.loads(state_blob)
        self.memory_mb = memory_mb
        _limit_memory(memory_mb)

    def ready(self) -> int:
        return os.getpid()

    def call(self, blob: bytes) -> tuple[str, Any]:
        try:
            fn, args, with_state = pickle.loads(blob)
            return "ok", (fn(self.state, *args) if with_state else fn(*args))
        except MemoryError:
            return "crash", f"memory limit exceeded (worker capped at +{self.memory_mb} MB)"
        except BaseException as err:  # noqa: BLE001 - includes SystemExit from a task
            return "error", one_line(err)


def _ray_module() -> Any:
    try:
        import ray
    except ImportError:
        raise UserError("--executor ray needs Ray: pip install 'rungs[ray]' (or pip install ray)") from None
    return ray


def _check_ray_address(address: str) -> None:
    """Fail in seconds, with one line, when nothing answers at a host:port Ray address."""
    import socket

    if address in ("auto", "local") or "://" in address and not address.startswith("ray://"):
        return
    hostport = address[len("ray://"):] if address.startswith("ray://") else address
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise UserError(f"ray:{address}: expected a Ray address HOST:PORT (e.g. ray:10.0.0.5:6379, ray:ray://head:10001) or ray:auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=RAY_CONNECT_TIMEOUT_S).close()
    except OSError as err:
        why = "timed out" if isinstance(err, TimeoutError) else (err.strerror or type(err).__name__)
        raise UserError(f"ray:{address}: no Ray cluster answers there ({why} within {RAY_CONNECT_TIMEOUT_S:g} s); "
                        "expected the address of a running Ray head node (`ray start --head` prints it)") from None


def connect_ray(address: str | None = None) -> Any:
    """The `ray` module, connected: the running Ray of this process if there is one (a veRL job,
    a test), else the cluster at `address` ("HOST:PORT", "ray://HOST:PORT" or "auto"), else a new
    local Ray on this machine (or the cluster RAY_ADDRESS names). Raises UserError in seconds when
    the address does not answer, never hangs on it."""
    ray = _ray_module()
    if ray.is_initialized():
        return ray
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        _check_ray_address(address)
    try:
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False, include_dashboard=False,
                 configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise UserError(f"ray:{address or 'local'}: cannot connect to Ray: {one_line(err)}") from None
    return ray


class RayExecutor:
    """Verifier workers as Ray actors: the `Executor` contract of `ProcessExecutor` on a Ray cluster.

    Each actor is a dedicated process (scheduled anywhere in the cluster, one CPU each) holding the
    task, capped in address space like a process worker. One item at a time per actor, so an
    item's wall-clock limit starts when it starts; an item past its limit has its actor killed
    (`ray.kill`) and replaced and scores `timeout`; an actor that dies (segfault, OOM killer,
    node loss) costs its one item a `crash`; results come back in order. `workers` defaults to the
    cluster's CPU count. Use it where verification should scale past one machine (a veRL or
    multi-node job already running Ray), or to share one cluster's CPUs among several jobs.
    """

    def __init__(
        self,
        state: Any = None,
        workers: int | None = None,
        memory_mb: int | None = 2048,
        address: str | None = None,
    ) -> None:
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.ray = connect_ray(address)
        self.address = address
        self.memory_mb = memory_mb
        cpus = int(self.ray.cluster_resources().get("CPU", 1) or 1)
        self.workers = workers or max(1, cpus)
        self._state_blob = pickled_state(state, "Ray workers")
        self._actor_cls = self.ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(_RayWorker)
        self._actors: list[Any] = []
        self._lock = threading.Lock()
        self._closed = False
        self.stats: collections.Counter[str] = collections.Counter()

    def _spawn(self) -> Any:
        actor = self._actor_cls.remote(self._state_blob, self.memory_mb)
        self.stats["started"] += 1
        return actor

    def _wait_ready(self, actors: list[Any]) -> None:
        refs = [a.ready.remote() for a in actors]
        try:
            self.ray.get(refs, timeout=STARTUP_TIMEOUT_S)
        except Exception as err:  # noqa: BLE001 - GetTimeoutError, RayActorError, ...
            raise RuntimeError(f"Ray verifier workers could not start: {one_line(err)}; check that rungs is installed "
                               "on every node and that the cluster has free CPUs") from None

    def _kill(self, actor: Any) -> None:
        try:
            self.ray.kill(actor, no_restart=True)
        except Exception:  # noqa: BLE001 - already dead
            pass

    def close(self) -> None:
        """Kill every actor. Idempotent; leaves Ray itself running (other users may share it)."""
        with self._lock:
            self._closed = True
            while self._actors:
                self._kill(self._actors.pop())

    def run(
        self,
        fn: Callable[..., Any],
        args: Sequence[tuple[Any, ...]],
        timeout_s: float | None,
        *,
        with_state: bool = False,
    ) -> list[Result]:
        """Run `fn` on every tuple of `args` on the actors; results in order, never raising for a call."""
        ray = self.ray
        limit = math.inf if timeout_s is None else float(timeout_s)
        with self._lock:
            if self._closed:
                raise RuntimeError("the verifier pool is closed")
            results: list[Result | None] = [None] * len(args)
            pending = collections.deque(range(len(args)))
            new = [self._spawn() for _ in range(min(len(args), self.workers) - len(self._actors))]
            if new:
                self._wait_ready(new)
                self._actors.extend(new)
            inflight: dict[Any, tuple[int, int, float]] = {}  # ref -> (actor index, item, deadline)
            busy: set[int] = set()
            try:
                while pending or inflight:
                    for index in range(len(self._actors)):
                        if not pending:
                            break
                        if index in busy:
                            continue
                        item = pending.popleft()
                        try:
                            blob = pickle.dumps((fn, args[item], with_state))
                        except Exception as err:  # noqa: BLE001 - this item cannot be shipped
                            results[item] = Result("error", detail=f"could not send the call to a worker: {one_line(err)}")
                            continue
                        inflight[self._actors[index].call.remote(blob)] = (index, item, time.monotonic() + limit)
                        busy.add(index)
                    if not inflight:
                        continue
                    wake = min(d for _, _, d in inflight.values())
                    wait_s = None if wake == math.inf else max(0.0, wake - time.monotonic())
                    done, _ = ray.wait(list(inflight), num_returns=1, timeout=wait_s)
                    for ref in done:
                        index, item, _ = inflight.pop(ref)
                        busy.discard(index)
                        results[item] = self._collect(ref, index)
                    now = time.monotonic()
                    for ref, (index, item, deadline) in list(inflight.items()):
                        if now >= deadline and not ray.wait([ref], timeout=0)[0]:
                            del inflight[ref]
                            busy.discard(index)
                            results[item] = Result("timeout", detail=f"ran past its {limit:g} s limit and was killed")
                            self.stats["timeouts"] += 1
                            self._replace(index)
            except BaseException:
                for index, _, _ in inflight.values():  # interrupted: busy actors hold stale items
                    self._replace(index, wait=False)
                raise
            self.stats["items"] += len(args)
            return results  # type: ignore[return-value]

    def _collect(self, ref: Any, index: int) -> Result:
        try:
            status, payload = self.ray.get(ref)
        except Exception as err:  # noqa: BLE001 - the actor died under the call (RayActorError, ...)
            self.stats["crashes"] += 1
            self._replace(index)
            return Result("crash", detail=f"the Ray verifier worker died ({one_line(err)[:200]})")
        if status == "ok":
            return Result("ok", payload)
        self.stats["crashes" if status == "crash" else "errors"] += 1
        if status == "crash":  # its heap may be in any state: replace it
            self._replace(index)
        return Result(status, detail=payload)

    def _replace(self, index: int, wait: bool = True) -> None:
        self._kill(self._actors[index])
        self.stats["restarts"] += 1
        self._actors[index] = self._spawn()
        if wait:
            self._wait_ready([self._actors[index]])


# ----------------------------------------------------------------------------------------------
# The verification pool


def _task_verify(task: Task, problem: Problem, completion: str) -> Verdict:
    return task.verify(problem, completion)


def _task_verify_answer(task: Task, problem: Problem, answer: str) -> Verdict:
    return task.verify_answer(problem, answer)


EXECUTORS = ("process", "inline", "ray", "ray:ADDRESS")


def parse_executor(spec: str) -> tuple[str, str | None]:
    """'process' | 'inline' | 'ray' | 'ray:ADDRESS' -> (kind, address); UserError otherwise."""
    kind, _, address = str(spec).partition(":")
    if kind in ("process", "inline") and not address:
        return kind, None
    if kind == "ray":
        return kind, address or None
    raise UserError(f"unknown verifier executor {spec!r}: expected one of {', '.join(EXECUTORS)}")


class VerifierPool:
    """Verify batches of model output in parallel, each item under a hard time and memory limit.

    `workers`: worker processes (default: `rungs.threads.default_workers()`, one per CPU core outside a job). `timeout_s`: wall-clock limit per
    item. `memory_mb`: how far a worker's address space may grow past its size after start-up
    (None: no cap). `executor`: "process" (default), "ray" / "ray:ADDRESS" (actors on a Ray
    cluster, same limits; `RayExecutor`), "inline" (debugging: no isolation, no timeouts), or any
    object implementing `Executor` built with this task as its state.
    Use as a context manager, or call `close()`; closing kills and reaps every worker.
    """

    def __init__(
        self,
        task: Task,
        workers: int | None = None,
        timeout_s: float = 5.0,
        memory_mb: int | None = 2048,
        executor: str | Executor = "process",
    ) -> None:
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.task = task
        self.timeout_s = float(timeout_s)
        if isinstance(executor, str):
            kind, address = parse_executor(executor)
            if kind == "process":
                self.executor: Executor = ProcessExecutor(task, workers=workers, memory_mb=memory_mb)
            elif kind == "inline":
                self.executor = InlineExecutor(task)
            else:
                self.executor = RayExecutor(task, workers=workers, memory_mb=memory_mb, address=address)
        else:
            self.executor = executor

    def __enter__(self) -> VerifierPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.executor.close()

    def verify(self, problems: Sequence[Problem], completions: Sequence[str]) -> list[Verdict]:
        """Verdicts of raw model completions (the task extracts the answer), in order."""
        _check_lengths(problems, completions, "completions")
        results = self.executor.run(_task_verify, list(zip(problems, completions)), self.timeout_s, with_state=True)
        return [self._verdict(r) for r in results]

    def verify_answers(self, problems: Sequence[Problem], answers: Sequence[str]) -> list[Verdict]:
        """Verdicts of already-extracted answers, in order."""
        _check_lengths(problems, answers, "answers")
        results = self.executor.run(_task_verify_answer, list(zip(problems, answers)), self.timeout_s, with_state=True)
        return [self._verdict(r, answer) for r, answer in zip(results, answers)]

    def answer_keys(self, problems: Sequence[Problem], answers: Sequence[str | None]) -> list[str | None]:
        """The task's answer key (as `key_str`) of each extracted answer, computed in the workers
        (a key may parse hostile text with sympy); None for a missing answer or a failed call.
        Equal keys mean equivalent answers: what majority votes group by."""
        _check_lengths(problems, answers, "answers")
        keys: list[str | None] = [None] * len(answers)
        todo = [(i, a) for i, a in enumerate(answers) if a is not None]
        if todo:
            results = self.executor.run(_answer_key, [(problems[i], a) for i, a in todo], self.timeout_s, with_state=True)
            for (i, _), result in zip(todo, results):
                if result.ok and (result.value is None or isinstance(result.value, str)):
                    keys[i] = result.value
        return keys

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], timeout_s: float | None = None) -> list[Result]:
        """`fn(item)` for each item in the workers (`fn` must be a picklable top-level callable)."""
        limit = self.timeout_s if timeout_s is None else timeout_s
        return self.executor.run(fn, [(item,) for item in items], limit)

    def _verdict(self, result: Result, answer: str | None = None) -> Verdict:
        if result.status == "ok":
            if isinstance(result.value, Verdict):
                return result.value
            return Verdict.fail(Status.ERROR, f"the verifier returned {type(result.value).__name__}, not a Verdict", answer)
        if result.status == "timeout":
            return Verdict.fail(Status.TIMEOUT, f"verifier ran past {self.timeout_s:g} s and was killed", answer)
        if result.status == "crash":
            return Verdict.fail(Status.CRASH, result.detail, answer)
        return Verdict.fail(Status.ERROR, result.detail, answer)


def _answer_key(task: Task, problem: Problem, answer: str) -> str | None:
    """Runs in a verifier worker: the task's answer key, as a stable string."""
    from rungs.types import key_str

    return key_str(task.answer_key(problem, answer))


def _check_lengths(problems: Sequence[Problem], other: Sequence[Any], name: str) -> None:
    if len(problems) != len(other):
        raise ValueError(f"got {len(problems)} problems but {len(other)} {name}")


def verify_one(
    task: Task, problem: Problem, completion: str, timeout_s: float = 5.0, memory_mb: int | None = 2048
) -> Verdict:
    """Verify one completion in a fresh one-worker pool (for the CLI; batch work should reuse a pool)."""
    with VerifierPool(task, workers=1, timeout_s=timeout_s, memory_mb=memory_mb) as pool:
        return pool.verify([problem], [completion])[0]
