"""`rungs serve` against hostile and careless clients (issue 13 item 9), on 127.0.0.1 only:
client errors are 400s, an over-long prompt is refused rather than cut, connections are bounded
and idle ones closed, and a client that hangs up is one log line, never a traceback."""

from __future__ import annotations

import json
import logging
import socket
import struct
import threading
import time

import pytest

from rungs.errors import UserError
from rungs.policies.tiny import TinyPolicy
from rungs.serve import make_server


@pytest.fixture(scope="module")
def policy():
    return TinyPolicy.new(alphabets=["0123456789+-*/() x"], seed=0, d_model=16, n_layers=1, n_heads=2, mlp_hidden=32,
                          max_seq_len=64)


@pytest.fixture
def server(policy):
    srv = make_server(policy, "127.0.0.1", 0, model_name="tiny", max_connections=4, idle_timeout=0.5)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _raw(server, data: bytes, timeout: float = 10.0) -> tuple[int, dict]:
    """Send raw bytes, read one response: (status, JSON body)."""
    with socket.create_connection(server.server_address[:2], timeout=timeout) as sock:
        sock.sendall(data)
        chunks = b""
        while b"\r\n\r\n" not in chunks:
            got = sock.recv(65536)
            if not got:
                break
            chunks += got
        head, _, body = chunks.partition(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
        while len(body) < length:
            body += sock.recv(65536)
    return int(head.split()[1]), json.loads(body)


def _post(server, path: str, text: str, headers: str = "") -> tuple[int, dict]:
    body = text.encode()
    request = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
               f"{headers or f'Content-Length: {len(body)}'}\r\n\r\n").encode() + body
    return _raw(server, request)


CHAT = '{"messages": [{"role": "user", "content": %s}], "max_tokens": 4%s}'


@pytest.mark.parametrize(("path", "text", "headers", "needle"), [
    ("/v1/completions", '{"prompt": "1+1", "max_tokens": 2}', "Content-Length: abc", "Content-Length"),
    ("/v1/completions", '{"prompt": "1+1", "max_tokens": 2}', "Content-Length: -5", "Content-Length"),
    ("/v1/completions", '{"prompt": "1+1", "max_tokens": 2, "seed": ' + str(2**70) + '}', "", "seed"),
    ("/v1/completions", '{"prompt": "1+1", "max_tokens": 2, "temperature": 1e309}', "", "temperature"),
    ("/v1/completions", '{"prompt": "1+1", "max_tokens": 2, "top_p": NaN}', "", "top_p"),
    ("/v1/chat/completions", CHAT % ('[{"type": "image_url", "image_url": {"url": "x"}}]', ""), "", "not text"),
    ("/v1/chat/completions", CHAT % ('[{"type": "text", "text": 5}]', ""), "", "not text"),
    ("/v1/chat/completions", CHAT % ('["1+1"]', ""), "", "not text"),
    ("/v1/completions", json.dumps({"prompt": "1+" * 500_000, "max_tokens": 2}), "", "reads at most 62"),
    ("/v1/chat/completions", CHAT % (json.dumps("9" * 63), ""), "", "reads at most 62"),
    ("/v1/completions", '{"prompt": "1+1", "max_tokens": 2, "n": ' + "9" * 5000 + '}', "", "not JSON"),  # past int()'s digit limit
])
def test_client_errors_are_400(server, path, text, headers, needle):
    status, body = _post(server, path, text, headers)
    assert status == 400, body
    assert needle in body["error"]["message"] and body["error"]["type"] == "invalid_request_error"
    status, body = _post(server, "/v1/completions", '{"prompt": "1+1", "max_tokens": 2, "seed": 3}')
    assert status == 200 and body["choices"][0]["text"] is not None  # and the server keeps serving


def test_a_prompt_the_model_reads_whole_is_answered(server):
    status, body = _post(server, "/v1/chat/completions", CHAT % (json.dumps("9" * 62), ', "seed": -7'))
    assert status == 200, body


def test_connections_are_bounded_and_idle_ones_closed(server):
    before = threading.active_count()
    stalled = [socket.create_connection(server.server_address[:2], timeout=5) for _ in range(4)]
    time.sleep(0.2)
    try:
        status, body = _raw(server, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")  # a fifth: refused at once
        assert status == 503 and "busy" in body["error"]["message"]
        assert threading.active_count() <= before + 4
        for sock in stalled:  # each is closed by the server once idle for 0.5 s
            assert sock.recv(1024) == b""
    finally:
        for sock in stalled:
            sock.close()
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= before  # no thread leaked
    status, _ = _raw(server, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status == 200


def test_a_client_that_hangs_up_is_one_log_line(server, caplog, capfd):
    caplog.set_level(logging.INFO, logger="rungs.serve")
    body = json.dumps({"prompt": "1+1", "max_tokens": 40, "n": 64}).encode()
    for _ in range(3):
        sock = socket.create_connection(server.server_address[:2], timeout=5)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        sock.close()
    half = socket.create_connection(server.server_address[:2], timeout=5)  # a body cut short
    half.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"pro")
    half.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    half.close()
    # The server stays up; while the hung-up requests still hold the 4 connection slots (their
    # generations finish before the server sees the client gone) it answers 503, by design.
    deadline = time.monotonic() + 30
    while (status := _raw(server, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")[0]) == 503 \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    assert status == 200
    time.sleep(1.0)
    assert not any(r.exc_info for r in caplog.records), [r.getMessage() for r in caplog.records]
    assert "Traceback" not in capfd.readouterr().err


def test_work_queued_for_a_client_that_hung_up_is_skipped(server, policy, monkeypatch):
    calls = []
    generate = policy.generate

    def slow(prompts, n=1, sampling=None):
        calls.append(prompts[0])
        time.sleep(0.5)
        return generate(prompts, n=n, sampling=sampling)

    monkeypatch.setattr(policy, "generate", slow)
    first = threading.Thread(target=_post, args=(server, "/v1/completions", '{"prompt": "1+1", "max_tokens": 2}'))
    first.start()
    deadline = time.monotonic() + 30
    while not calls and time.monotonic() < deadline:  # the first request holds the policy (however slow the machine)
        time.sleep(0.01)
    body = b'{"prompt": "2+2", "max_tokens": 2}'
    sock = socket.create_connection(server.server_address[:2], timeout=5)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    time.sleep(0.1)
    sock.close()  # gone while waiting for the policy
    first.join(timeout=30)
    time.sleep(0.3)
    assert calls == ["1+1"]


def test_serve_without_task_serves_the_integration_checkpoint_as_other_commands_do(monkeypatch, capsys):
    """`rungs serve` with no --task loads the shipped tiny integration model, not random weights."""
    import types

    import rungs.serve
    from rungs.cli import main
    from rungs.policies.tiny.policy import shipped_checkpoints

    served = {}

    def fake_make_server(policy, host, port, model_name, **kwargs):
        served["policy"] = policy
        return types.SimpleNamespace(server_address=(host, 1234), app=types.SimpleNamespace(model_name="tiny"),
                                     serve_forever=lambda: None, server_close=lambda: None)

    monkeypatch.setattr(rungs.serve, "make_server", fake_make_server)
    assert main(["serve", "--port", "0"]) == 0
    assert served["policy"].source == str(shipped_checkpoints()["integration"])
    assert "at http://127.0.0.1:1234/v1" in capsys.readouterr().out


def test_rungs_eval_through_rungs_serve_prompts_the_tiny_model_as_it_was_trained(tmp_path):
    """`rungs serve` advertises the tiny model's compact prompt style and its prompt limit in
    /v1/models; the openai policy adopts the style, so eval through the server scores what the
    model scores directly (it sent the long instruct prompt, and every answer was empty). A prompt
    the server refuses as too long costs that problem, not the whole evaluation."""
    from rungs.policies import load_policy
    from rungs.policies.base import SamplingParams
    from rungs.tasks import get_task

    served = load_policy("tiny:integration")
    srv = make_server(served, "127.0.0.1", 0, model_name="tiny-integration")
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/v1"
        remote = load_policy(f"openai:{url}", max_retries=0)
        assert remote.prompt_style == "compact"
        assert load_policy(f"openai:{url}", max_retries=0, prompt_style="instruct").prompt_style == "instruct"
        task = get_task("integration")
        problems = task.generate(4, 2, seed=3)
        prompts = [task.prompt(p, remote.prompt_style) for p in problems]
        greedy = SamplingParams(temperature=0.0, max_new_tokens=48)
        direct = [row[0].text for row in served.generate(prompts, 1, greedy)]
        assert [row[0].text for row in remote.generate(prompts, 1, greedy)] == direct
        too_long = "x" * (served.max_prompt_tokens + 1)
        out = remote.generate([prompts[0], too_long], 1, greedy)
        assert out[0][0].text == direct[0] and out[1][0].text == "" and out[1][0].finish_reason == "error"
        alone = remote.generate([too_long], 2, greedy)  # alone in its call, and with n > 1: still that prompt's cost
        assert [c.finish_reason for c in alone[0]] == ["error", "error"] and remote._n_ok
        named = load_policy(f"openai:{url}", model="tiny-integration", max_retries=0)
        assert named.prompt_style == "compact"  # a named model still reads the advertised style
        with pytest.raises(UserError, match="rejected the request: the prompt is"):  # nothing ever answered: a setting
            named.generate([too_long, too_long + "y"], 1, greedy)
        params = named._params
        named._params = lambda *args: {**params(*args), "stop": [""]}  # a setting the server refuses for any prompt
        with pytest.raises(UserError, match="rejected the request: stop must be"):
            named.generate(prompts[:2], 1, greedy)
        remote.close()
        named.close()
    finally:
        srv.shutdown()
        srv.server_close()
