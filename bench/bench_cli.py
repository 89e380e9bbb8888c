"""What every bench script shares at its edges: one-line errors, checked counts, child processes
that end with their parent.

    if __name__ == "__main__":
        bench_cli.run(main, "learning")     # a rungs UserError (or a bad --out) ends in one line, status 2

`ChildGroup` starts subprocesses in their own process group and ends them (and whatever they
started) when the parent is told to stop (SIGTERM, SIGINT, SIGHUP, SIGQUIT) or leaves for any other
reason, and (Linux) when the parent is killed outright (SIGKILL, the OOM killer), so no orphan keeps
training, writing logs or holding a run directory after the parent is gone.

    python bench/bench_cli.py --guard CMD...   # internal: how a ChildGroup starts CMD on Linux (see guard)
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def run(main: Callable[[], Any], prog: str) -> None:
    """sys.exit(main()) (a main that returns a result, not a status, exits 0), with a rungs
    UserError as one line on stderr and status 2, and Ctrl-C as one line and status 130."""
    from rungs.errors import UserError

    try:
        code = main()
    except UserError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        code = 130
    sys.exit(code if isinstance(code, int) else 0)


def int_at_least(low: int, *, zero_means: str | None = None) -> Callable[[str], int]:
    """An argparse type: an integer >= low (and, with `zero_means`, also 0, which means that)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or (value < low and not (zero_means and value == 0)):
            also = f" (or 0: {zero_means})" if zero_means else ""
            raise argparse.ArgumentTypeError(f"{text!r}: expected an integer >= {low}{also}")
        return value

    parse.__name__ = "count"  # argparse names the type in its message: "invalid count value"
    return parse


positive = int_at_least(1)
non_negative = int_at_least(0)


def names_list(allowed: tuple[str, ...] | list[str], what: str = "name") -> Callable[[str], list[str]]:
    """An argparse type: a comma-separated list of `allowed` names (none unknown, at least one)."""

    def parse(text: str) -> list[str]:
        names = [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in names if n not in allowed]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"{text!r}: expected a comma-separated list of {', '.join(allowed)}"
                                             + (f" (unknown: {', '.join(unknown)})" if unknown else ""))
        return names

    parse.__name__ = what
    return parse


def writable_parent(path: str | Path, flag: str) -> Path:
    """Create the folder a result file goes into before any measurement; SystemExit (one line) if it can't be."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SystemExit(f"{flag} {path}: cannot create its folder ({err.strerror})") from None
    if path.is_dir():
        raise SystemExit(f"{flag} {path}: is a folder (expected a file name)")
    return path


class Stopped(SystemExit):
    """Raised in the parent by a SIGTERM, SIGINT, SIGHUP or SIGQUIT while a ChildGroup is open."""


# The signals a ChildGroup forwards: the ones that end a job, sent to this process or to its whole
# process group (Ctrl-C, `kill`, a closed terminal or dropped ssh: SIGHUP; Ctrl-\: SIGQUIT). The
# children sit in their own groups, so only this process hears them and passes them on.
FORWARDED = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT") if hasattr(signal, name))
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _parent_death_signal() -> Callable[[], None] | None:
    """Linux: a preexec_fn that has the kernel send the child SIGTERM when this process dies, however
    it dies (SIGKILL, the OOM killer: nothing the parent runs can forward those). None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: the child only calls it
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


class _ParentGone(Exception):
    """Raised in a guard by the kernel's SIGTERM (PR_SET_PDEATHSIG) once the ChildGroup's process has died."""


def guard(cmd: list[str], grace_s: float = 10.0) -> int:
    """Run `cmd` as this process's child and exit as it does; if the process that started this one
    dies first (the kernel's SIGTERM, armed by ChildGroup.popen), end the whole process group as
    ChildGroup.stop would: SIGTERM, `grace_s` seconds for `cmd`, then SIGKILL (this guard included).

    Why a guard: the kernel's parent-death signal reaches one process, and nothing that process's
    parent runs survives a SIGKILL; but a guard that leads the group and receives that signal can
    pass it to the group, so that what `cmd` started (grandchildren that arm nothing of their own)
    ends too, whatever `cmd` is. While the parent lives, the signals it sends to the group are for
    `cmd`: the guard only waits for `cmd` and passes its exit status (or the signal that ended it) up.
    """
    parent = os.getppid()
    gone: list[int] = []

    def on_signal(signum: int, frame: Any) -> None:
        if os.getppid() != parent and not gone:  # the parent died: the group is this guard's to end
            gone.append(signum)
            raise _ParentGone

    for sig in FORWARDED:
        signal.signal(sig, on_signal)
    proc: subprocess.Popen[Any] | None = None
    try:
        if os.getppid() != parent:  # died before the handlers were set: start nothing
            gone.append(0)
            raise _ParentGone
        death = _parent_death_signal()  # cmd ends if this guard is SIGKILLed (no worse than without one)
        try:
            proc = subprocess.Popen(cmd, close_fds=False, preexec_fn=death)  # every descriptor passed on, as given
        except OSError as err:  # no such program: one line, the shell's status
            print(f"{cmd[0] if cmd else '(no command)'}: {err.strerror}", file=sys.stderr, flush=True)
            return 127
        code = proc.wait()
    except _ParentGone:
        _killpg(0, signal.SIGTERM)  # this guard's handler has run once: it lets the echo pass
        if proc is not None:
            try:
                proc.wait(timeout=grace_s)
            except (subprocess.TimeoutExpired, _ParentGone):
                pass
        _killpg(0, signal.SIGKILL)  # what outlived cmd, and this guard
        return 128 + signal.SIGKILL
    if code < 0:  # ended by a signal: end the same way, so the parent sees what it would have without a guard
        try:
            signal.signal(-code, signal.SIG_DFL)
        except (OSError, ValueError):  # SIGKILL, SIGSTOP: always their default
            pass
        os.kill(os.getpid(), -code)
        return 128 - code
    return code


class ChildGroup:
    """Subprocesses that end with their parent.

    Each child starts in a new session (its own process group), so a signal to the group reaches
    the child and anything it started (verifier workers). While the group is open, SIGTERM, SIGINT,
    SIGHUP and SIGQUIT to this process (or to its process group, which the children are not in)
    raise `Stopped`; on leaving the `with` block for any reason, every child still running gets the
    same signal (SIGTERM otherwise), `grace_s` seconds to finish, and then SIGKILL. On Linux each
    child is started by a small `guard` process that leads its group and gets SIGTERM from the
    kernel if this process dies without leaving the block (SIGKILL, `kill -9 -PGID`, the OOM
    killer), and then ends the group the same way, grandchildren included; call `popen` from the
    main thread, since the kernel sends it when the thread that started the child ends. (So on
    Linux a returned Popen's pid is the guard's: signal the group, as `stop` does, not the pid.)
    """

    def __init__(self, prog: str, grace_s: float = 10.0) -> None:
        self.prog, self.grace_s = prog, grace_s
        self.procs: list[subprocess.Popen[Any]] = []
        self.received: int | None = None
        self._old: dict[int, Any] = {}

    def popen(self, cmd: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
        death = _parent_death_signal()
        if death is not None:
            given = kwargs.pop("preexec_fn", None)

            def preexec() -> None:
                death()
                if given is not None:
                    given()

            kwargs["preexec_fn"] = preexec
            # -I: the guard needs only the standard library, never a module of bench/ named like one of it
            cmd = [sys.executable, "-I", str(Path(__file__).resolve()), "--guard", str(self.grace_s), *cmd]
        proc = subprocess.Popen(cmd, start_new_session=True, **kwargs)
        self.procs.append(proc)
        return proc

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.received = signum
        raise Stopped(128 + signum)

    def __enter__(self) -> ChildGroup:
        for sig in FORWARDED:
            try:
                self._old[sig] = signal.signal(sig, self._on_signal)
            except ValueError:  # not the main thread: nothing to forward from
                pass
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()
        self.stop(self.received or signal.SIGTERM)
        if self.received is not None:
            name = signal.Signals(self.received).name
            try:  # after a SIGHUP the terminal may be gone
                print(f"{self.prog}: {name}: stopped its running jobs; run the same command again to resume",
                      file=sys.stderr, flush=True)
            except OSError:
                pass

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Signal every running child's process group, wait grace_s, then SIGKILL what is left."""
        live = [p for p in self.procs if p.poll() is None]
        for proc in live:
            _killpg(proc.pid, sig)
        deadline = time.monotonic() + self.grace_s
        for proc in live:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in live:
            _killpg(proc.pid, signal.SIGKILL)  # the group too: workers that outlived their parent
            if proc.poll() is None:
                proc.wait()


def _killpg(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


if __name__ == "__main__" and sys.argv[1:2] == ["--guard"]:
    sys.exit(guard(sys.argv[3:], float(sys.argv[2])))
