"""An OpenAI-compatible HTTP server for any local rungs policy (`rungs serve`).

Why: a policy trained with rungs (the tiny model, an HF model with a LoRA adapter) should be usable
by every tool that speaks the OpenAI API — including rungs' own `openai` policy, so that an
evaluation can run in one process against a model trained in another.

Endpoints: GET /v1/models, POST /v1/chat/completions, POST /v1/completions (n, temperature,
top_p, top_k, max_tokens / max_completion_tokens, stop, seed, logprobs), GET /health. No streaming.
The standard library's ThreadingHTTPServer accepts connections in threads; calls into the policy
are serialised with a lock (a policy is not thread-safe and batches internally anyway).

Clients are untrusted. A malformed request is a 400 in OpenAI's error shape, never a 500: a bad
Content-Length, non-finite numbers (JSON's 1e309 and NaN), integers outside int64 (a seed of
2**70), content parts that are not text. A prompt longer than the policy can read (the tiny
model's 254 characters) is a 400 naming both lengths, never silently cut. At most
`max_connections` connections are served at once (more get a 503 at once), an idle connection is
closed after `idle_timeout` seconds, and a client that hangs up is one log line, not a traceback.
Every error is a JSON body in that shape, http.server's own ones too (414, 431, 400, 501, 505).
A connection refused or closed before its request was read whole (the 503 over the cap, a 413, a
malformed request) is closed gracefully: the answer, then a FIN, then what the client still sends
is read and dropped for a bounded time and number of bytes (`_linger`). Closed at once, unread
bytes make the kernel send a reset, and a client still sending its body (http.client sends the
head and the body apart) got a broken pipe or reset instead of the answer.

Conventions, as vLLM: the text ends before the stop string that ended it (rungs policies already
cut it so), which is named in the choice's `stop_reason`; each choice carries its `token_ids`. /v1/chat/completions takes one user message (rungs policies
are prompted with a single user turn and apply their own chat template); /v1/completions gives
the model the prompt as it is, with no chat template (an HF policy runs it with `raw_prompts`,
as vLLM does; the tokenizer's BOS is added unless the text starts with it).
"""

from __future__ import annotations

import json
import logging
import math
import socket
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from rungs.policies.base import Policy, SamplingParams, raw_prompts
from rungs.types import Completion

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 8 * 2**20
MAX_N = 256
MAX_CONNECTIONS = 64  # connections served at once; more are answered 503 and closed
IDLE_TIMEOUT_S = 30.0  # a connection that sends nothing for this long is closed
LINGER_S = 5.0  # after an answer that leaves request bytes unread, how long what the client still sends is dropped
LINGER_BYTES = MAX_BODY_BYTES + 2**16  # and how much of it at most, before the connection is closed anyway
MAX_LINGERING = 64  # refused connections lingering at once; past this one more is closed at once
RETRY_AFTER_S = 1  # the 503's Retry-After
INT64 = (-(2**63), 2**63 - 1)
_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)


def _error_body(status: int, message: str, param: str | None = None, kind: str | None = None) -> dict[str, Any]:
    """OpenAI's error shape, the one body of every error this server sends."""
    kind = kind or ("invalid_request_error" if status < 500 or status in (501, 505) else "internal_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": status}}


def _linger(sock: socket.socket, seconds: float = LINGER_S, max_bytes: int = LINGER_BYTES) -> None:
    """Close `sock` gracefully, blocking (a connection's own thread): a FIN after the answer, then
    what the client still sends is read and dropped until it closes, `seconds` pass or `max_bytes`
    are read. The caller closes the socket after."""
    deadline = time.monotonic() + seconds
    try:
        sock.shutdown(socket.SHUT_WR)
        while max_bytes > 0 and (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            got = sock.recv(min(2**16, max_bytes))
            if not got:
                return
            max_bytes -= len(got)
    except (OSError, ValueError):  # gone, reset, timed out: nothing more to wait for
        pass


class _Lingerer:
    """Closes refused connections gracefully off the accept loop, all in one thread: each socket
    (its answer written, its write side shut) is read and dropped, as data arrives, until the client
    closes, `seconds` pass or `max_bytes` are read; at most `max_sockets` at once."""

    def __init__(self, seconds: float = LINGER_S, max_bytes: int = LINGER_BYTES, max_sockets: int = MAX_LINGERING) -> None:
        self.seconds, self.max_bytes, self.max_sockets = seconds, max_bytes, max_sockets
        self._lock = threading.Lock()
        self._new: list[socket.socket] = []
        self._count = 0  # sockets handed over and not yet closed
        self._closed = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._thread = threading.Thread(target=self._run, name="rungs-serve-linger", daemon=True)
        self._thread.start()

    def add(self, sock: socket.socket) -> bool:
        """Hand `sock` over (False, and it stays the caller's, when closed or full)."""
        with self._lock:
            if self._closed or self._count >= self.max_sockets:
                return False
            self._count += 1
            self._new.append(sock)
        self._wake()
        return True

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._wake()
        self._thread.join(timeout=5.0)

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:  # BlockingIOError: a wake-up is pending already
            pass

    def _run(self) -> None:
        import selectors

        selector = selectors.DefaultSelector()
        selector.register(self._wake_r, selectors.EVENT_READ)
        state: dict[socket.socket, list[float]] = {}  # socket -> [deadline, bytes it may still drop]

        def done(sock: socket.socket) -> None:
            selector.unregister(sock)
            del state[sock]
            sock.close()
            with self._lock:
                self._count -= 1

        try:
            while True:
                timeout = max(0.0, min(d for d, _ in state.values()) - time.monotonic()) if state else None
                events = selector.select(timeout)
                with self._lock:
                    new, self._new, closed = self._new, [], self._closed
                if closed:
                    for sock in new:
                        sock.close()
                    break
                for sock in new:
                    sock.setblocking(False)
                    selector.register(sock, selectors.EVENT_READ)
                    state[sock] = [time.monotonic() + self.seconds, self.max_bytes]
                for key, _ in events:
                    sock = key.fileobj
                    if sock is self._wake_r:
                        try:
                            while self._wake_r.recv(4096):
                                pass
                        except OSError:
                            pass
                        continue
                    if sock not in state:
                        continue
                    entry = state[sock]
                    try:
                        while True:
                            got = sock.recv(int(min(2**16, entry[1])))
                            entry[1] -= len(got)
                            if not got or entry[1] <= 0:
                                done(sock)
                                break
                    except BlockingIOError:  # all read for now
                        pass
                    except OSError:  # reset or gone
                        done(sock)
                now = time.monotonic()
                for sock in [s for s, (deadline, _) in state.items() if deadline <= now]:
                    done(sock)
        finally:
            for sock in list(state):
                sock.close()
            selector.close()
            self._wake_r.close()
            self._wake_w.close()


def _readable(sock: socket.socket) -> bool:
    import select

    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return False


class RequestError(Exception):
    """A bad request: answered with this status and message in OpenAI's error format."""

    def __init__(self, message: str, status: int = 400, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.param = status, param


def _number(body: dict[str, Any], key: str, kind: type, default: Any) -> Any:
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or \
            (kind is int and not float(value).is_integer()):
        raise RequestError(f"{key} must be a finite {'integer' if kind is int else 'number'}, got {value!r}", param=key)
    if kind is int and not INT64[0] <= int(value) <= INT64[1]:
        raise RequestError(f"{key} must fit in a 64-bit signed integer, got {value!r}", param=key)
    return kind(value)


class PolicyServer:
    """Turns OpenAI request bodies into `policy.generate` calls and back into response bodies."""

    def __init__(self, policy: Policy, model_name: str | None = None) -> None:
        self.policy = policy
        self.model_name = model_name or policy.name or "rungs"
        self.lock = threading.Lock()
        self.created = int(time.time())

    # -- request parsing -----------------------------------------------------------------------------
    def _sampling(self, body: dict[str, Any]) -> tuple[int, SamplingParams]:
        model = body.get("model")
        if model not in (None, "", self.model_name):
            raise RequestError(f"The model `{model}` does not exist; this server serves `{self.model_name}`", 404, "model")
        n = _number(body, "n", int, 1)
        if not 1 <= n <= MAX_N:
            raise RequestError(f"n must be in [1, {MAX_N}], got {n}", param="n")
        max_tokens = _number(body, "max_completion_tokens", int, None)
        tokens_param = "max_completion_tokens" if max_tokens is not None else "max_tokens"
        max_tokens = max_tokens if max_tokens is not None else _number(body, "max_tokens", int, 256)
        if max_tokens < 1:
            raise RequestError(f"{tokens_param} must be >= 1, got {max_tokens}", param=tokens_param)
        if body.get("top_logprobs"):
            raise RequestError("top_logprobs: top alternatives are not served, only the sampled tokens' "
                               "log-probs (logprobs=true)", param="top_logprobs")
        stop = body.get("stop") or ()
        if isinstance(stop, str):
            stop = (stop,)
        if not isinstance(stop, (list, tuple)) or not all(isinstance(s, str) and s for s in stop):
            raise RequestError("stop must be a string or a list of non-empty strings", param="stop")
        try:
            sp = SamplingParams(
                temperature=_number(body, "temperature", float, 1.0),
                top_p=_number(body, "top_p", float, 1.0),
                top_k=max(0, _number(body, "top_k", int, 0)),  # vLLM's extension; -1 means off there
                max_new_tokens=max_tokens,
                stop=tuple(stop),
                seed=_number(body, "seed", int, None),
            )
        except ValueError as err:
            raise RequestError(str(err)) from None
        return n, sp

    def _check_prompt(self, prompt: str, param: str) -> None:
        """A 400 for a prompt longer than the policy reads (it would keep only its end)."""
        limit = getattr(self.policy, "max_prompt_tokens", None)
        if not limit:
            return
        tok = getattr(self.policy, "tokenizer", None)
        count = len(tok.encode(prompt)) if tok is not None and hasattr(tok, "encode") else len(prompt)
        if count > limit:
            raise RequestError(f"the prompt is {count} tokens; this model reads at most {limit} (it would see only the "
                               f"end): shorten the prompt", param=param)

    def _generate(self, prompt: str, n: int, sp: SamplingParams, alive: Callable[[], bool] | None = None,
                  raw: bool = False) -> tuple[list[Completion], int]:
        """Sample under the lock; `raw` (the completions endpoint) runs a policy that has a
        `raw_prompts` switch with it on, so the prompt is not wrapped in the chat template."""
        with self.lock:
            if alive is not None and not alive():  # the client left while waiting for the policy
                raise ConnectionAbortedError("the client closed the connection before generation")
            with raw_prompts(self.policy, on=raw):
                completions = self.policy.generate([prompt], n=n, sampling=sp)[0]
                prompt_tokens = len(self.policy.encode_prompts([prompt])[0]) if self.policy.trainable else 0
        return completions, prompt_tokens

    def _token_text(self, token_id: int) -> str:
        tok = getattr(self.policy, "tokenizer", None)
        if tok is not None and hasattr(tok, "decode"):
            try:
                return tok.decode([token_id])
            except Exception:  # noqa: BLE001 - a display string only
                pass
        return f"token_id:{token_id}"  # vLLM's spelling when it returns ids instead of text

    def _stop_reason(self, c: Completion, stop: tuple[str, ...]) -> str | None:
        """Which stop string ended `c`: the one its tokens wrote right after its text."""
        tok = getattr(self.policy, "tokenizer", None)
        if c.finish_reason != "stop" or not stop or not c.token_ids or tok is None or not hasattr(tok, "decode"):
            return None
        try:
            written = tok.decode(c.token_ids, skip_special_tokens=True)
        except TypeError:  # a tokenizer without the keyword (the tiny one)
            written = tok.decode(c.token_ids)
        except Exception:  # noqa: BLE001 - informative only
            return None
        return next((s for s in stop if written.startswith(c.text + s)), None)

    def _envelope(self, kind: str, choices: list[dict[str, Any]], prompt_tokens: int, completions: list[Completion]) -> dict[str, Any]:
        completion_tokens = sum(len(c.token_ids) for c in completions)
        prefix = "chatcmpl" if kind == "chat.completion" else "cmpl"
        return {
            "id": f"{prefix}-{uuid.uuid4().hex}", "object": kind, "created": int(time.time()),
            "model": self.model_name, "choices": choices,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }

    # -- endpoints -----------------------------------------------------------------------------------
    def models(self) -> dict[str, Any]:
        """OpenAI's model list, plus what a client needs to prompt this policy as it was trained:
        `prompt_style` (a task's "compact" prompt for the tiny model, "instruct" otherwise; rungs'
        openai policy adopts it) and, where the policy has one, `max_prompt_tokens`."""
        entry: dict[str, Any] = {"id": self.model_name, "object": "model", "created": self.created, "owned_by": "rungs",
                                 "prompt_style": getattr(self.policy, "prompt_style", "instruct")}
        limit = getattr(self.policy, "max_prompt_tokens", None)
        if limit:
            entry["max_prompt_tokens"] = int(limit)
        return {"object": "list", "data": [entry]}

    def chat(self, body: dict[str, Any], alive: Callable[[], bool] | None = None) -> dict[str, Any]:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise RequestError("messages must be a non-empty list", param="messages")
        users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        if len(messages) != 1 or len(users) != 1:
            raise RequestError("this server takes exactly one user message (rungs policies apply their own chat template)", param="messages")
        content = users[0].get("content")
        if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
            for i, part in enumerate(content):
                if not (isinstance(part, dict) and part.get("type", "text") == "text" and isinstance(part.get("text"), str)):
                    kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                    raise RequestError(f"message content part {i} is not text ({kind!r}); this server takes text only",
                                       param="messages")
            content = "".join(part["text"] for part in content)
        if not isinstance(content, str):
            raise RequestError("message content must be a string or a list of text parts", param="messages")
        self._check_prompt(content, "messages")
        n, sp = self._sampling(body)
        completions, prompt_tokens = self._generate(content, n, sp, alive)
        choices = []
        for i, c in enumerate(completions):
            text, stop_reason = c.text, self._stop_reason(c, sp.stop)
            logprobs = None
            if body.get("logprobs") and c.logprobs is not None and c.token_ids:
                content_lp = []
                for t, lp in zip(c.token_ids, c.logprobs):
                    token = self._token_text(t)
                    content_lp.append({"token": token, "logprob": lp, "bytes": list(token.encode("utf-8")), "top_logprobs": []})
                logprobs = {"content": content_lp}
            choices.append({"index": i, "message": {"role": "assistant", "content": text}, "logprobs": logprobs,
                            "finish_reason": c.finish_reason, "stop_reason": stop_reason, "token_ids": c.token_ids})
        return self._envelope("chat.completion", choices, prompt_tokens, completions)

    def completions(self, body: dict[str, Any], alive: Callable[[], bool] | None = None) -> dict[str, Any]:
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
            prompt = prompt[0]
        if not isinstance(prompt, str):
            raise RequestError("prompt must be one string", param="prompt")
        self._check_prompt(prompt, "prompt")
        n, sp = self._sampling(body)
        completions, prompt_tokens = self._generate(prompt, n, sp, alive, raw=True)
        want_lp = body.get("logprobs") is not None and body.get("logprobs") is not False
        choices = []
        for i, c in enumerate(completions):
            text, stop_reason = c.text, self._stop_reason(c, sp.stop)
            logprobs = None
            if want_lp and c.logprobs is not None and c.token_ids:
                tokens = [self._token_text(t) for t in c.token_ids]
                offsets, pos = [], 0
                for tok in tokens:
                    offsets.append(pos)
                    pos += len(tok)
                logprobs = {"tokens": tokens, "token_logprobs": list(c.logprobs), "top_logprobs": None, "text_offset": offsets}
            choices.append({"index": i, "text": text, "logprobs": logprobs, "finish_reason": c.finish_reason,
                            "stop_reason": stop_reason, "token_ids": c.token_ids})
        return self._envelope("text_completion", choices, prompt_tokens, completions)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT_S  # socketserver sets it on the connection: a silent client is dropped

    def setup(self) -> None:
        self.timeout = self.server.idle_timeout
        self._unread = False  # the connection closes with request bytes not read (a body, the rest of a head)
        super().setup()

    def finish(self) -> None:
        """The connection closes: gracefully where the client may still be sending (see `_linger`)."""
        super().finish()
        if self._unread or _readable(self.connection):
            _linger(self.connection)

    def _close_unread(self) -> None:
        """Answer, then close: the rest of this request is not read (and must not be read as the next one)."""
        self.close_connection = True
        self._unread = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.info("%s - %s", self.address_string(), format % args)

    def _gone(self, err: BaseException) -> None:
        """The client hung up or went silent: one line, and the connection is closed."""
        self.close_connection = True
        log.warning("rungs serve: %s - client gone (%s)", self.address_string(), type(err).__name__)

    def _alive(self) -> bool:
        """False once the client has hung up (its socket reads as closed or reset): work queued
        for it is skipped instead of generated for no one."""
        import select

        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return not readable or self.connection.recv(1, socket.MSG_PEEK) != b""
        except (OSError, ValueError):
            return False

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if self.close_connection:  # the client is told, not left to find the connection closed
                self.send_header("Connection", "close")
            self.end_headers()
            if getattr(self, "command", None) != "HEAD":
                self.wfile.write(data)
        except _GONE as err:
            self._gone(err)

    def _error(self, status: int, message: str, param: str | None = None) -> None:
        self._send(status, _error_body(status, message, param))

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (parse_request's 400, 431 and 505, handle_one_request's 414, a
        method without a do_ handler's 501) in the JSON shape of every other error, not its HTML
        page. Its request was not read whole: the connection closes, gracefully."""
        short, long = self.responses.get(code, ("Error", ""))
        text = message or short
        detail = explain if explain is not None else long
        if detail and detail != text:
            text = f"{text}: {detail}"
        self.log_error("code %d, message %s", code, text)
        if self.request_version == "HTTP/0.9" and len(getattr(self, "requestline", "").split()) != 2:
            self.request_version = self.protocol_version  # not an HTTP/0.9 request (`GET /`), just a bad one: a status line
        self._close_unread()
        self._error(int(code), text)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path.split("?")[0].rstrip("/")
        if path in ("/v1/models", "/models"):
            self._send(200, self.server.app.models())
        elif path in ("/health", "/v1/health"):
            self._send(200, {"status": "ok"})
        else:
            self._error(404, f"no route GET {path}")

    def do_POST(self) -> None:  # noqa: N802
        path = self.path.split("?")[0].rstrip("/")
        routes = {"/v1/chat/completions": self.server.app.chat, "/v1/completions": self.server.app.completions}
        if path not in routes:
            self._close_unread()  # its body is not read
            self._error(404, f"no route POST {path}")
            return
        try:
            if self.headers.get("Transfer-Encoding"):  # a chunked body would be read as the next request
                self._close_unread()
                raise RequestError("Transfer-Encoding is not supported: send the body with a Content-Length", 411)
            raw_length = (self.headers.get("Content-Length") or "0").strip()
            if not raw_length.isdigit():
                self._close_unread()  # the body's end is unknown: nothing after it can be read
                raise RequestError(f"Content-Length must be a non-negative integer, got {raw_length[:40]!r}")
            length = int(raw_length)
            if length > MAX_BODY_BYTES:
                self._close_unread()
                raise RequestError(f"request body over {MAX_BODY_BYTES} bytes", 413)
            data = self.rfile.read(length)
            if len(data) < length:
                raise ConnectionResetError("the body ended early")
            try:
                body = json.loads(data or b"{}")
            except (ValueError, RecursionError) as err:  # JSONDecodeError, bad UTF-8, an int past 4,300 digits
                raise RequestError(f"request body is not JSON: {str(err)[:200]}") from None
            if not isinstance(body, dict):
                raise RequestError("request body must be a JSON object")
            if body.get("stream"):
                raise RequestError("stream=true is not supported by rungs serve", param="stream")
            self._send(200, routes[path](body, alive=self._alive))
        except RequestError as err:
            self._error(err.status, str(err), err.param)
        except _GONE as err:
            self._gone(err)
        except Exception as err:  # noqa: BLE001 - a request must not kill the server
            log.exception("rungs serve: %s failed", path)
            self._error(500, f"{type(err).__name__}: {err}")


class _Server(ThreadingHTTPServer):
    """A thread per connection, at most `max_connections` at once: one more is answered 503 from
    the accept loop, and then closed gracefully by one `_Lingerer` thread."""

    daemon_threads = True
    app: PolicyServer
    max_connections: int = MAX_CONNECTIONS
    idle_timeout: float = IDLE_TIMEOUT_S
    _slots: threading.BoundedSemaphore

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lingerer = _Lingerer()  # once bound: a server that could not listen leaves no thread

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self._refuse(request)
            return
        try:
            super().process_request(request, client_address)  # starts the connection's thread
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def _refuse(self, request: socket.socket) -> None:
        """The 503, written at once without blocking (a new socket's send buffer holds it), a FIN,
        and the socket goes to the `_Lingerer`: closed now, the request's unread bytes would make the
        kernel reset the connection, and the client, still sending its body, got a broken pipe or a
        reset instead of the 503."""
        body = json.dumps(_error_body(503, f"server busy: {self.max_connections} connections already open; retry "
                                           f"after {RETRY_AFTER_S} s", kind="server_busy")).encode()
        response = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
                    b"Retry-After: %d\r\nContent-Length: %d\r\n\r\n" % (RETRY_AFTER_S, len(body)) + body)
        try:
            request.setblocking(False)
            if request.send(response) == len(response):
                request.shutdown(socket.SHUT_WR)
                if self._lingerer.add(request):
                    return
        except OSError:
            pass
        self.shutdown_request(request)  # the client is gone, or too many linger already: closed at once

    def server_close(self) -> None:
        super().server_close()
        self._lingerer.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that failed outside a request handler: one line (a traceback only for our bugs)."""
        import sys

        err = sys.exc_info()[1]
        if isinstance(err, (*_GONE, OSError)):
            log.warning("rungs serve: %s - connection closed (%s)", client_address[0] if client_address else "?",
                        type(err).__name__)
        else:
            log.exception("rungs serve: connection from %s failed", client_address)


def make_server(policy: Policy, host: str = "127.0.0.1", port: int = 8000, model_name: str | None = None, *,
                max_connections: int = MAX_CONNECTIONS, idle_timeout: float = IDLE_TIMEOUT_S) -> _Server:
    """A bound, not yet serving, server (port 0 picks a free port: read `server.server_address`).
    Call `serve_forever()` (in a thread for tests) and `shutdown()` + `server_close()` to stop.
    `max_connections` bounds the connections (threads) served at once; a connection silent for
    `idle_timeout` seconds is closed."""
    if max_connections < 1 or not idle_timeout > 0:
        raise ValueError(f"max_connections >= 1 and idle_timeout > 0 expected, got {max_connections}, {idle_timeout}")
    server = _Server((host, port), _Handler)
    server.app = PolicyServer(policy, model_name)
    server.max_connections, server.idle_timeout = max_connections, float(idle_timeout)
    server._slots = threading.BoundedSemaphore(max_connections)
    return server


def serve(policy: Policy, host: str = "127.0.0.1", port: int = 8000, model_name: str | None = None) -> None:
    """Serve until interrupted."""
    server = make_server(policy, host, port, model_name)
    try:
        server.serve_forever()
    finally:
        server.server_close()
