"""`rungs serve` at its limits, on 127.0.0.1 only: a client over the connection cap, or one whose
request the server refuses before reading all of it, receives the whole JSON error (never a TCP
reset that loses it), and every error the server sends, http.server's own included (414, 431, 400,
501, 505), is OpenAI's JSON error shape rather than an HTML page."""

from __future__ import annotations

import http.client
import json
import socket
import threading

import pytest

from rungs.policies.tiny import TinyPolicy
from rungs.serve import MAX_BODY_BYTES, make_server

TIMEOUT = 30.0  # generous: the machine may be slow; nothing here asserts timing


@pytest.fixture(scope="module")
def policy():
    return TinyPolicy.new(alphabets=["0123456789+-*/() x"], seed=0, d_model=16, n_layers=1, n_heads=2, mlp_hidden=32,
                          max_seq_len=64)


def _start(policy, **kwargs):
    srv = make_server(policy, "127.0.0.1", 0, model_name="tiny", **kwargs)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture
def server(policy):
    srv = _start(policy, max_connections=4, idle_timeout=5.0)
    yield srv
    srv.shutdown()
    srv.server_close()


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes, bytes]:
    """One HTTP response from `sock`: (status, headers with lower-case names, body, bytes after it).
    A reset raises ConnectionResetError, as it would in any client."""
    data = b""
    while b"\r\n\r\n" not in data:
        got = sock.recv(65536)
        if not got:
            raise AssertionError(f"the connection closed before a whole response head: {data[:300]!r}")
        data += got
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("iso-8859-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers["content-length"])
    while len(rest) < length:
        got = sock.recv(65536)
        if not got:
            raise AssertionError(f"the connection closed {length - len(rest)} bytes before the body's end")
        rest += got
    return int(lines[0].split()[1]), headers, rest[:length], rest[length:]


def _read_to_eof(sock: socket.socket) -> bytes:
    data = b""
    while got := sock.recv(65536):
        data += got
    return data


def _exchange(server, data: bytes) -> tuple[int, dict[str, str], dict, bytes]:
    """Send `data` on a new connection, read one response and everything up to the server's close:
    (status, headers, JSON body, bytes after the response)."""
    with socket.create_connection(server.server_address[:2], timeout=TIMEOUT) as sock:
        sock.sendall(data)
        status, headers, body, rest = _read_response(sock)
        rest += _read_to_eof(sock)
    return status, headers, json.loads(body), rest


def _assert_json_error(status: int, headers: dict[str, str], body: dict, expected: int) -> None:
    assert status == expected, (status, body)
    assert headers["content-type"] == "application/json", headers
    assert headers.get("connection", "").lower() == "close", headers
    err = body["error"]
    assert isinstance(err["message"], str) and err["message"] and isinstance(err["type"], str)
    assert err["code"] == expected


# -- (1) over the connection cap: a whole 503, not a reset ---------------------------------------------
def _hold_slots(server, count: int) -> list[socket.socket]:
    """`count` keep-alive connections, each answered once (so the server has surely taken its slot)."""
    held = []
    for _ in range(count):
        sock = socket.create_connection(server.server_address[:2], timeout=TIMEOUT)
        held.append(sock)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, _, _ = _read_response(sock)
        assert status == 200
    return held


def _http_post(server, path: str, body: bytes) -> tuple[int, dict[str, str], dict]:
    """POST with http.client, as a client would (it sends the head and then the body, and reads the
    answer only once the body is sent): (status, headers with lower-case names, JSON body). A reset
    or broken pipe raises, as it does in any client."""
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=TIMEOUT)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(response.read())
    finally:
        conn.close()


@pytest.mark.parametrize("body_bytes", [40, 200_000, 3_000_000])
def test_a_post_over_the_connection_cap_gets_a_whole_503_not_a_reset(policy, body_bytes):
    srv = _start(policy, max_connections=2, idle_timeout=120.0)
    held = []
    try:
        held = _hold_slots(srv, 2)
        body = json.dumps({"prompt": "1+1", "max_tokens": 2, "pad": "x" * body_bytes}).encode()
        # every try is answered (a broken pipe or reset raises here; it was most tries), then checked
        answers = [_http_post(srv, "/v1/completions", body) for _ in range(20 if body_bytes < 10**6 else 3)]
        for status, headers, payload in answers:
            _assert_json_error(status, headers, payload, 503)
            assert int(headers["retry-after"]) >= 1 and "busy" in payload["error"]["message"]
        for sock in held:  # the held connections are still served: the cap refused only the extra ones
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _read_response(sock)[0] == 200
    finally:
        for sock in held:
            sock.close()
        srv.shutdown()
        srv.server_close()


def test_a_body_sent_after_the_503_does_not_reset_the_connection(policy):
    """A client that sends its head, reads the 503 already written, then sends its body anyway."""
    srv = _start(policy, max_connections=1, idle_timeout=120.0)
    held = []
    try:
        held = _hold_slots(srv, 1)
        body = json.dumps({"prompt": "1+1", "max_tokens": 2}).encode()
        for _ in range(10):
            with socket.create_connection(srv.server_address[:2], timeout=TIMEOUT) as sock:
                sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
                status, headers, raw, _ = _read_response(sock)  # the 503 comes before the body is sent
                _assert_json_error(status, headers, json.loads(raw), 503)
                sock.sendall(body)  # the server still reads (and drops) it: no broken pipe, no reset
                assert _read_to_eof(sock) == b""
    finally:
        for sock in held:
            sock.close()
        srv.shutdown()
        srv.server_close()


# -- the same fault inside a connection: a refusal before the body is read -----------------------------
def test_a_body_over_the_limit_gets_its_413_not_a_reset(server):
    for _ in range(3):
        status, headers, payload = _http_post(server, "/v1/completions", b"x" * (MAX_BODY_BYTES + 1))
        _assert_json_error(status, headers, payload, 413)
    head = b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (10 * MAX_BODY_BYTES)
    with socket.create_connection(server.server_address[:2], timeout=TIMEOUT) as sock:
        sock.sendall(head)
        status, headers, raw, _ = _read_response(sock)
        _assert_json_error(status, headers, json.loads(raw), 413)
        sock.sendall(b"x" * 300_000)  # the start of a body the server will not read
        assert _read_to_eof(sock) == b""


def test_a_post_to_an_unknown_route_does_not_leave_its_body_in_the_stream(server):
    """The unread body was read as the next request (a second, HTML, 400 after the 404)."""
    body = b'{"prompt": "1+1"}\r\n'
    status, headers, payload, rest = _exchange(
        server, b"POST /v1/nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    _assert_json_error(status, headers, payload, 404)
    assert rest == b""


def test_a_chunked_body_is_refused_not_read_as_the_next_request(server):
    body = b'{"prompt": "1+1", "max_tokens": 2}'
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    status, headers, payload, rest = _exchange(
        server, b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked)
    _assert_json_error(status, headers, payload, 411)
    assert "Content-Length" in payload["error"]["message"] and rest == b""


# -- (2) http.server's own errors are JSON too -----------------------------------------------------------
@pytest.mark.parametrize(("request_bytes", "expected", "needle"), [
    (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "Too Long"),
    (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n", 431, "Line too long"),
    (b"GET /health HTTP/1.1\r\n" + b"".join(b"X-H%d: 1\r\n" % i for i in range(150)) + b"\r\n", 431, "Too many headers"),
    (b"GARBAGE\r\n\r\n", 400, "Bad request syntax"),
    (b"GET /health HTTP/x.y\r\nHost: x\r\n\r\n", 400, "Bad request version"),
    (b"GET /health HTTP/2.0\r\nHost: x\r\n\r\n", 505, "Invalid HTTP version"),
    (b"DELETE /v1/models HTTP/1.1\r\nHost: x\r\n\r\n", 501, "Unsupported method"),
    (b"PUT /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", 501, "Unsupported method"),
], ids=["414-uri", "431-line", "431-count", "400-syntax", "400-version", "505", "501", "501-body"])
def test_http_servers_own_errors_are_json(server, request_bytes, expected, needle):
    status, headers, body, rest = _exchange(server, request_bytes)
    _assert_json_error(status, headers, body, expected)
    assert needle in body["error"]["message"], body
    assert rest == b""  # one response, then the close
    status, _, body, _ = _exchange(server, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status == 200 and body == {"status": "ok"}  # and the server keeps serving


def test_an_error_to_a_head_request_has_json_headers_and_no_body(server):
    with socket.create_connection(server.server_address[:2], timeout=TIMEOUT) as sock:
        sock.sendall(b"HEAD /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
        data = _read_to_eof(sock)
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 501 ") and b"Content-Type: application/json" in head and rest == b""


def test_an_http09_error_is_the_json_body_alone(server):
    """An HTTP/0.9 request line has no status line or headers in its answer: the body is the JSON."""
    with socket.create_connection(server.server_address[:2], timeout=TIMEOUT) as sock:
        sock.sendall(b"POST /v1/completions\r\n")
        data = _read_to_eof(sock)
    assert json.loads(data)["error"]["code"] == 400
