"""Run directories and the server under kills, concurrent writers and hostile input: rerunnable figures.

    python bench/reliability.py               # about 3-5 minutes on an idle 2-core machine
    python bench/reliability.py --kills 3     # fewer kill points

What it does, every process a real `rungs` command started here, the server on 127.0.0.1 only:

1. kill -9 at chosen moments. A reference `rungs train` run (tiny model, countdown) and an
   uninterrupted `rungs eval` run; then the same commands killed with SIGKILL once their logs
   reach a chosen point (after step k, inside a checkpoint being written, after m finished
   problems), resumed with `--resume`, and compared with the reference: events (times aside),
   rollouts and final weights for train; the summary's figures for eval.
2. Concurrent writers. While a long `rungs train` owns a run directory, a second train on the same
   --out, a resume of the live run, an eval on it and an eval --resume of it, and ladder/ttrl
   resumes of it: each must exit 2 with one line, and the live run's log must stay clean.
3. Hostile rows: a verify file with a BOM, null answers, a 5 MB answer, code injection,
   10,000-deep nesting and problems outside the grammar; statuses counted, stdout size measured.
4. Hostile requests to `rungs serve`: malformed headers and numbers, non-text content, a 1 MB
   prompt, clients that hang up, and 200 stalled connections against a 64-connection bound;
   statuses counted, the server's threads counted before and after, tracebacks counted.
5. Leaks: processes started by this script (tagged through their environment) still alive at
   the end, and server threads left once the stalled clients are gone.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # bench_cli beside this file, also when loaded by path (the tests)
    sys.path.insert(0, str(HERE))
import bench_cli  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
IDLE_S = 10  # the server's --idle-timeout here
TAG = f"rungs-reliability-{uuid.uuid4().hex[:8]}"
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "RUNGS_BENCH_TAG": TAG}
TRAIN = ["train", "--task", "countdown", "--problems", "builtin:countdown-easy", "--limit", "4", "--max-steps", "6",
         "--prompts-per-step", "2", "--num-generations", "2", "--max-completion-length", "12", "--workers", "1",
         "--save-steps", "2", "--no-eval-on-start", "--no-plot", "--no-progress"]
EVAL = ["eval", "--task", "countdown", "--problems", "builtin:countdown-easy", "--policy", "tiny", "--limit", "6",
        "--strategy", "greedy,majority", "--n", "1,4", "--seeds", "2", "--batch-size", "1", "--max-new-tokens", "16",
        "--workers", "1", "--no-plot", "--no-progress"]


def rungs(*argv: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rungs.cli", *argv], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def finish(proc: subprocess.Popen, timeout: float = 900) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return rows


def kill_when(proc: subprocess.Popen, ready, timeout: float = 600) -> bool:
    """SIGKILL `proc` once `ready()` is true; False if it ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if ready():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.005)
    proc.communicate()
    return False


# -- 1. kills ----------------------------------------------------------------------------------------------

def train_fingerprint(run: Path) -> tuple:
    events = [{k: v for k, v in e.items() if not k.startswith("time/")} for e in jsonl(run / "events.jsonl")]
    last = max((p for p in (run / "checkpoints").glob("step-*")), key=lambda p: int(p.name[5:]))
    return events, jsonl(run / "rollouts.jsonl"), (last / "policy" / "model.safetensors").read_bytes()


def eval_fingerprint(run: Path) -> dict:
    summary = json.loads((run / "results.json").read_text())["summary"]
    return {k: v for k, v in summary.items() if k not in ("timing",)} | {
        "greedy": {k: v for k, v in (summary["greedy"] or {}).items() if not k.startswith("wall")}}


KILL_POINTS = 8  # the kill points `kills` knows (--kills takes the first N)


def kills(root: Path, n: int) -> dict:
    ref = root / "train-ref"
    code, _, err = finish(rungs(*TRAIN, "--out", str(ref)))
    assert code == 0, err
    reference = train_fingerprint(ref)
    eref = root / "eval-ref"
    code, _, err = finish(rungs(*EVAL, "--out", str(eref)))
    assert code == 0, err
    eval_reference = eval_fingerprint(eref)

    def steps_at_least(run: Path, k: int):
        return lambda: sum(1 for e in jsonl(run / "events.jsonl") if e.get("type") == "train") >= k

    def in_checkpoint(run: Path):
        return lambda: any(p.name.startswith(".tmp-") for p in (run / "checkpoints").glob(".tmp-*"))

    def records_at_least(run: Path, m: int):
        return lambda: len(jsonl(run / "samples.jsonl")) >= m

    points = [("train", "before the first checkpoint (step 1 logged)", lambda r: steps_at_least(r, 1)),
              ("train", "inside a checkpoint being written", in_checkpoint),
              ("train", "after step 3 (between checkpoints)", lambda r: steps_at_least(r, 3)),
              ("eval", "after 1 finished problem", lambda r: records_at_least(r, 1)),
              ("train", "after step 5 (between checkpoints)", lambda r: steps_at_least(r, 5)),
              ("eval", "after 9 finished problems", lambda r: records_at_least(r, 9)),
              ("train", "inside the second checkpoint", in_checkpoint),
              ("eval", "after 14 finished problems", lambda r: records_at_least(r, 14))]
    assert len(points) == KILL_POINTS
    points = points[:n]
    rows = []
    for i, (job, where, ready) in enumerate(points):
        run = root / f"kill-{i}"
        proc = rungs(*(TRAIN if job == "train" else EVAL), "--out", str(run))
        if where == "inside the second checkpoint":
            def ready(r: Path) -> object:
                return lambda: steps_at_least(r, 3)() and in_checkpoint(r)()
        killed = kill_when(proc, ready(run))
        resume = ["train", "--resume", str(run), "--no-progress", "--no-plot"] if job == "train" else \
            ["eval", "--resume", "--out", str(run), "--no-progress", "--no-plot"]
        code, _, err = finish(rungs(*resume))
        same = code == 0 and ((train_fingerprint(run) == reference) if job == "train" else
                              (eval_fingerprint(run) == eval_reference))
        rows.append({"job": job, "kill point": where, "killed": killed, "resume exit": code, "identical": same})
        print(f"  kill {i + 1}: {job:5s} {where:42s} killed={killed} resumed rc={code} identical={same}", flush=True)
    return {"points": rows, "tried": sum(r["killed"] for r in rows),
            "identical": sum(r["killed"] and r["identical"] for r in rows)}


# -- 2. concurrent writers ---------------------------------------------------------------------------------

def writers(root: Path) -> dict:
    live = root / "live"
    holder = rungs(*[a if a != "6" else "400" for a in TRAIN], "--out", str(live))
    deadline = time.monotonic() + 600
    while not jsonl(live / "events.jsonl") and time.monotonic() < deadline and holder.poll() is None:
        time.sleep(0.05)
    attempts = [("second train, same --out", [*TRAIN, "--out", str(live)]),
                ("train --resume of the live run", ["train", "--resume", str(live)]),
                ("eval --out the live run", [*EVAL, "--out", str(live)]),
                ("eval --resume --out the live run", [*EVAL, "--resume", "--out", str(live)]),
                ("ladder --resume the live run", ["ladder", "--resume", str(live)]),
                ("ttrl --resume the live run", ["ttrl", "--resume", str(live)])]
    rows = []
    for what, argv in attempts:
        code, _, err = finish(rungs(*argv))
        lines = err.strip().splitlines()
        refused = code == 2 and len(lines) == 1 and str(live) in lines[0]
        by = "lock" if f"pid {holder.pid}" in err else "job kind" if "run directory" in err else "?"
        rows.append({"attempt": what, "exit": code, "refused": refused, "by": by})
        print(f"  {what:34s} exit {code} refused={refused} ({by})", flush=True)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    steps = [e["step"] for e in jsonl(live / "events.jsonl") if e.get("type") == "train"]
    clean = steps == list(range(1, len(steps) + 1))
    return {"attempts": rows, "refused": sum(r["refused"] for r in rows), "tried": len(rows), "live_log_clean": clean}


# -- 3. hostile rows ---------------------------------------------------------------------------------------

def hostile_rows(root: Path) -> dict:
    p24 = "numbers: 1 3 4 6; target: 24"
    rows = [{"problem": p24, "answer": None}, {"problem": p24, "completion": None},
            {"problem": p24, "answer": "1" * 5_000_000},
            {"problem": p24, "answer": "(" * 10_000 + "1" + ")" * 10_000},
            {"problem": "what is love", "answer": "1"}, {"answer": "2"},
            {"problem": p24, "answer": "6/(1-3/4)"}]
    rows += [{"problem": p24, "completion": f"<answer>{code}</answer>"} for code in (
        "__import__('os').system('touch PWNED')", "().__class__.__base__.__subclasses__()", "9**9**9**9",
        "exec('1')", "lambda: 1", "6/(1-3/4)\x00", "６/(1-3/4)", "1e308*1e308", "open('/etc/passwd').read()")]
    path = root / "hostile.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + "".join(json.dumps(r) + "\n" for r in rows).encode())
    code, out, err = finish(subprocess.Popen([sys.executable, "-m", "rungs.cli", "verify", "--task", "countdown",
                                              str(path), "--workers", "1"], env=ENV, cwd=root, stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE, text=True))
    statuses = collections.Counter(json.loads(line)["status"] for line in out.splitlines())
    bad = root / "notjsonl.jsonl"
    bad.write_text('{"problem": "x", "answer": "1"}\n{not json\n')
    code2, _, err2 = finish(rungs("verify", "--task", "countdown", str(bad)))
    return {"rows": len(rows), "exit": code, "statuses": dict(statuses), "stdout_bytes": len(out),
            "code_ran": (root / "PWNED").exists(), "not_jsonl_exit": code2, "not_jsonl_message": err2.strip()}


# -- 4. hostile requests -----------------------------------------------------------------------------------

def request(port: int, raw: bytes, rst: bool = False, timeout: float = 30) -> int | None:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        if rst:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.sendall(raw)
            return None
        sock.sendall(raw)
        head = b""
        while b"\r\n" not in head:
            got = sock.recv(4096)
            if not got:
                return None
            head += got
        return int(head.split()[1])


def post(body: str, path: str = "/v1/completions", length: str | None = None) -> bytes:
    data = body.encode()
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            f"Content-Length: {length if length is not None else len(data)}\r\n\r\n").encode() + data


def threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def hostile_requests(root: Path, stalled: int) -> dict:
    server = subprocess.Popen([sys.executable, "-m", "rungs.cli", "serve", "--policy", "tiny", "--task", "countdown",
                               "--port", "0", "--idle-timeout", str(IDLE_S)], env=ENV, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    line = server.stdout.readline()
    port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
    request(port, post('{"prompt": "numbers: 1 2; target: 3", "max_tokens": 8, "seed": 1}'))  # warm: its threads exist
    time.sleep(0.5)
    base_threads = threads(server.pid)
    chat = '{"messages": [{"role": "user", "content": %s}], "max_tokens": 4}'
    cases = {
        "Content-Length: abc": post('{"prompt": "1"}', length="abc"),
        "Content-Length: -5": post('{"prompt": "1"}', length="-5"),
        "seed 2**70": post('{"prompt": "1+1", "max_tokens": 2, "seed": ' + str(2**70) + "}"),
        "temperature 1e309": post('{"prompt": "1+1", "max_tokens": 2, "temperature": 1e309}'),
        "top_p NaN": post('{"prompt": "1+1", "max_tokens": 2, "top_p": NaN}'),
        "image content part": post(chat % '[{"type": "image_url", "image_url": {"url": "x"}}]', "/v1/chat/completions"),
        "non-object content part": post(chat % '["hi"]', "/v1/chat/completions"),
        "1 MB prompt": post(json.dumps({"prompt": "1+" * 500_000, "max_tokens": 2})),
        "malformed JSON": post('{"prompt": '),
        "body over 8 MB (declared)": post("", length=str(9 * 2**20)),
        "a good request": post('{"prompt": "numbers: 1 2; target: 3", "max_tokens": 8, "seed": 1}'),
    }
    statuses = {what: request(port, raw) for what, raw in cases.items()}
    for _ in range(50):  # clients that hang up mid-request
        request(port, post('{"prompt": "1+1", "max_tokens": 40, "n": 16}'), rst=True)
        request(port, post('{"prompt": "1+1"', length="100"), rst=True)
    socks = []
    for _ in range(stalled):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        socks.append(s)
    time.sleep(0.5)
    peak = threads(server.pid)
    busy = collections.Counter(request(port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                               for _ in range(5))
    time.sleep(IDLE_S + 1.0)  # past the idle timeout: the server has closed every stalled connection
    closed_by_server = 0
    for s in socks:
        s.settimeout(5)
        try:  # b"": closed by the server; a 503 first for those refused at once
            closed_by_server += s.recv(65536) in (b"",) or s.recv(65536) == b""
        except OSError:
            pass
        s.close()
    deadline = time.monotonic() + 120  # work queued for clients that hung up is skipped, not generated
    while threads(server.pid) > base_threads and time.monotonic() < deadline:
        time.sleep(0.1)
    after = threads(server.pid)
    after_ok = request(port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    server.send_signal(signal.SIGINT)
    try:
        _, err = server.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        _, err = server.communicate()
    return {"statuses": statuses, "hang_ups": 100, "stalled": stalled, "threads_base": base_threads,
            "threads_peak": peak, "threads_after": after, "health_while_stalled": dict(busy),
            "health_after": after_ok, "closed_stalled": closed_by_server,
            "tracebacks": err.count("Traceback"), "server_log_lines": len(err.strip().splitlines())}


# -- 5. leaks ----------------------------------------------------------------------------------------------

def leaked() -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            if TAG.encode() in environ:
                found.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120])
        except OSError:
            continue
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=bench_cli.positive, default=8, help="kill points to try (1 to 8; default 8)")
    parser.add_argument("--stalled", type=bench_cli.non_negative, default=200,
                        help="stalled connections against the 64-connection bound (default 200)")
    parser.add_argument("--only", choices=["kills", "writers", "rows", "requests"], action="append",
                        help="run only these parts (repeatable; default: all)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.kills > KILL_POINTS:
        parser.error(f"argument --kills: {args.kills}: there are {KILL_POINTS} kill points (expected 1 to {KILL_POINTS})")
    if args.json:  # before the measurement, not after it
        bench_cli.writable_parent(args.json, "--json")
    parts = set(args.only or ["kills", "writers", "rows", "requests"])
    started = time.monotonic()
    ok = True
    figures: dict = {}
    with tempfile.TemporaryDirectory(prefix="rungs-reliability-") as tmp:
        root = Path(tmp)
        if "kills" in parts:
            print("1. kill -9 at chosen moments, then --resume", flush=True)
            figures["kills"] = kills(root, args.kills)
        if "writers" in parts:
            print("2. concurrent writers on a live run directory", flush=True)
            figures["writers"] = writers(root)
        if "rows" in parts:
            print("3. hostile verify rows", flush=True)
            figures["rows"] = hostile_rows(root)
        if "requests" in parts:
            print("4. hostile requests to rungs serve (127.0.0.1)", flush=True)
            figures["requests"] = hostile_requests(root, args.stalled)
    time.sleep(1.0)
    leaks = figures["leaked_processes"] = leaked()
    figures["seconds"] = round(time.monotonic() - started, 1)
    print()
    if "kills" in figures:
        k = figures["kills"]
        print(f"kill points tried: {k['tried']}; resumes identical to the uninterrupted reference: {k['identical']}/{k['tried']}")
        ok &= k["identical"] == k["tried"]
    if "writers" in figures:
        w = figures["writers"]
        print(f"concurrent-writer attempts refused: {w['refused']}/{w['tried']} "
              f"({dict(collections.Counter(a['by'] for a in w['attempts']))}); the live run's log clean: {w['live_log_clean']}")
        ok &= w["refused"] == w["tried"] and w["live_log_clean"]
    if "rows" in figures:
        h = figures["rows"]
        print(f"hostile verify rows: {h['rows']}, exit {h['exit']}, statuses {h['statuses']}, stdout {h['stdout_bytes']:,} "
              f"bytes, code ran: {h['code_ran']}; a non-JSONL file: exit {h['not_jsonl_exit']}")
        ok &= not h["code_ran"]
    if "requests" in figures:
        r = figures["requests"]
        print("hostile requests: " + ", ".join(f"{what}: {status}" for what, status in r["statuses"].items()))
        print(f"  {r['hang_ups']} hang-ups and {r['stalled']} stalled connections: server threads {r['threads_base']} -> "
              f"peak {r['threads_peak']} -> {r['threads_after']} after; /health while stalled {r['health_while_stalled']}, "
              f"after {r['health_after']}; tracebacks {r['tracebacks']}, server log lines {r['server_log_lines']}")
        ok &= r["tracebacks"] == 0 and r["threads_after"] <= r["threads_base"]
    print(f"leaked processes: {len(leaks)}{' ' + str(leaks) if leaks else ''}; wall {figures['seconds']} s")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    return 0 if ok and not leaks else 1


if __name__ == "__main__":
    bench_cli.run(main, "reliability")
