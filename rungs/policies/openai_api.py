"""Any OpenAI-compatible server (vLLM, SGLang, llama.cpp, ollama, `rungs serve`, OpenAI) as a policy.

`load_policy("openai:http://localhost:8000/v1", model="Qwen/Qwen2.5-7B-Instruct")`. Inference only:
the strategies that only sample (best-of-N, majority, weighted voting, FIRE is not among them)
run against a model someone else serves, with no torch in the loop.

It is a thin layer over the official `openai` client, which already does timeouts and retries with
exponential backoff (connection errors, 408/409/429/5xx). What this adds:
- `n` samples per prompt with the `n` parameter, topped up by extra requests (with seed+k) when a
  server returns fewer (llama.cpp and ollama ignore `n`) or rejects n > 1;
- prompts in parallel, at most `concurrency` requests in flight;
- per-token log-probs when the server gives them (asked for once; if the server refuses, never
  again); token ids when it returns them (`rungs serve` and vLLM's `token_ids` field);
- a stop string ends the text just before it (the API's convention, and every rungs policy's);
- one-line errors: an unreachable server is a `UserError` naming the URL, as is a request the
  server refuses for a setting; one it refuses for the prompt itself (too long for the model:
  `_about_the_prompt`) costs that prompt (empty completions with finish_reason "error", one
  warning per kind of refusal), not the evaluation; but when every prompt of a call is refused
  and the server has answered none yet, it is a setting (a max_tokens past the context) and an error;
- the prompt style: a task's "instruct" prompt, or the "compact" one that `rungs serve`
  advertises for the tiny model it serves (`prompt_style` in /v1/models; or the option).
"""

from __future__ import annotations

import logging
import os
import re
import urllib.parse
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rungs.errors import UserError
from rungs.policies.base import Policy, SamplingParams
from rungs.types import Completion

log = logging.getLogger(__name__)

ENDPOINTS = ("chat", "completions")


def normalize_base_url(url: str) -> str:
    """'localhost:8000' -> 'http://localhost:8000/v1'; a URL with a path is kept as it is."""
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    parts = urllib.parse.urlsplit(url)
    if not parts.netloc:
        raise UserError(f"openai policy: {url!r} is not a server URL; expected e.g. http://localhost:8000/v1")
    if parts.path in ("", "/"):
        url = url + "/v1"
    return url


def _reason(err: BaseException) -> str:
    """The innermost cause of a connection error, lower-cased for a one-line message."""
    while err.__cause__ is not None or err.__context__ is not None:
        err = err.__cause__ or err.__context__  # type: ignore[assignment]
    text = str(err).strip() or type(err).__name__
    if "refused" in text.lower():
        return "connection refused"
    return text.splitlines()[0].lower()


# How servers say a prompt is too long: rungs serve ("the prompt is N tokens"), vLLM ("This
# model's maximum context length is N tokens"), OpenAI ("context_length_exceeded"), llama.cpp.
_PROMPT_REFUSAL = re.compile(r"context[ _]length|too long|prompt is \d+ tokens|maximum context|exceeds? the (?:context|"
                             r"maximum)|n_ctx", re.IGNORECASE)


def _about_the_prompt(err: Any, message: str) -> bool:
    """Whether a 400 / 422 refuses this prompt (its `param` is the prompt, or it says the prompt is
    too long), rather than a setting that would fail for every prompt."""
    body = getattr(err, "body", None)
    inner = body.get("error", body) if isinstance(body, dict) else None
    param = inner.get("param") if isinstance(inner, dict) else None
    code = inner.get("code") if isinstance(inner, dict) else None
    return param in ("prompt", "messages") or code == "context_length_exceeded" or bool(_PROMPT_REFUSAL.search(message))


class _Refused(Exception):
    """The server refused one request (a 400 / 422 that no fallback cures)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class OpenAIPolicy(Policy):
    """Sampling through an OpenAI-compatible HTTP API. Not trainable."""

    trainable = False
    prompt_style = "instruct"

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        endpoint: str = "chat",
        concurrency: int = 8,
        timeout: float = 600.0,
        max_retries: int = 3,
        logprobs: bool = True,
        prompt_style: str | None = None,
    ) -> None:
        try:
            import openai
        except ImportError:
            raise UserError("the openai policy needs the openai package: pip install 'rungs[openai]' "
                            "(or pip install openai)") from None

        if endpoint not in ENDPOINTS:
            raise UserError(f"openai policy: endpoint {endpoint!r} is not one of {', '.join(ENDPOINTS)}")
        self.base_url = normalize_base_url(base_url)
        self.endpoint = endpoint
        self.concurrency = max(1, int(concurrency))
        self.want_logprobs = logprobs
        self._n_ok = True  # the server accepts n > 1 (until it says otherwise)
        self._warned_fire = False
        self._openai = openai
        self.client = openai.OpenAI(
            base_url=self.base_url, api_key=api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY",
            timeout=timeout, max_retries=max_retries,
        )
        from rungs.tasks.base import PROMPT_STYLES

        if prompt_style is not None and prompt_style not in PROMPT_STYLES:
            raise UserError(f"openai policy: prompt_style {prompt_style!r} is not one of {', '.join(PROMPT_STYLES)}")
        listed = self._models() if not model else self._models_quietly()
        self.model = model or self._only_model(listed)
        advertised = getattr(next((m for m in listed or [] if m.id == self.model), None), "prompt_style", None)
        # the task's prompt in the form the served model was trained on: `rungs serve` says which
        self.prompt_style = prompt_style or (advertised if advertised in PROMPT_STYLES else "instruct")
        self._warned_refusals: set[str] = set()
        self._answered = 0  # prompts the server has sampled: refusals before any are a setting's fault
        self.name = f"openai:{self.base_url}#{self.model}"

    @classmethod
    def from_spec(cls, arg: str | None, **kwargs: Any) -> OpenAIPolicy:
        """`openai:BASE_URL` (default: $OPENAI_BASE_URL). `task=` and `seed=` (what a job hands every
        policy: ttt, ttrl, ladder) are accepted and unused: a server samples with each request's
        seed (`SamplingParams.seed`), not with one of its own."""
        kwargs.pop("task", None)
        kwargs.pop("seed", None)
        url = arg or os.environ.get("OPENAI_BASE_URL")
        if not url:
            raise UserError("openai policy needs a server URL: openai:http://HOST:PORT/v1 (or set OPENAI_BASE_URL)")
        import inspect

        known = {k for k, v in inspect.signature(cls.__init__).parameters.items() if v.kind is v.KEYWORD_ONLY}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise UserError(f"openai policy: unknown option {unknown[0]!r}; expected one of {', '.join(sorted(known))}")
        return cls(url, **kwargs)

    # -- errors --------------------------------------------------------------------------------------
    def _call(self, fn: Any, **kwargs: Any) -> Any:
        """One API call, with the client's retries; connection failures become one-line UserErrors."""
        try:
            return fn(**kwargs)
        except self._openai.APITimeoutError:
            raise UserError(f"OpenAI-compatible server at {self.base_url} timed out (timeout={self.client.timeout}s)") from None
        except self._openai.APIConnectionError as err:
            raise UserError(f"cannot reach OpenAI-compatible server at {self.base_url}: {_reason(err)}") from None
        except self._openai.AuthenticationError:
            raise UserError(f"OpenAI-compatible server at {self.base_url} refused the API key (set OPENAI_API_KEY or api_key=)") from None
        except self._openai.NotFoundError as err:
            raise UserError(f"OpenAI-compatible server at {self.base_url}: {self._message(err)} (model {kwargs.get('model')!r})") from None

    @staticmethod
    def _message(err: Any) -> str:
        body = getattr(err, "body", None)
        if isinstance(body, dict):
            inner = body.get("error", body)
            if isinstance(inner, dict) and inner.get("message"):
                return str(inner["message"]).splitlines()[0]
            if isinstance(inner, str):
                return inner.splitlines()[0]
        return str(err).splitlines()[0]

    def _models(self) -> list[Any]:
        return list(self._call(self.client.models.list))

    def _models_quietly(self) -> list[Any]:
        """The server's model list, or [] when it has none or does not answer within 10 s (a named
        model needs no list; it is read only for an advertised prompt style)."""
        try:
            return list(self.client.with_options(timeout=10.0, max_retries=0).models.list())
        except Exception:  # noqa: BLE001 - any failure just means no advertised style
            return []

    def _only_model(self, listed: list[Any]) -> str:
        names = [m.id for m in listed]
        if len(names) == 1:
            return names[0]
        if not names:
            raise UserError(f"OpenAI-compatible server at {self.base_url} lists no models; pass model=NAME")
        shown = ", ".join(names[:8]) + (" ..." if len(names) > 8 else "")
        raise UserError(f"OpenAI-compatible server at {self.base_url} serves {len(names)} models ({shown}); pass model=NAME")

    # -- sampling ----------------------------------------------------------------------------------
    def generate(self, prompts: Sequence[str], n: int = 1, sampling: SamplingParams | None = None) -> list[list[Completion]]:
        sp = sampling or SamplingParams()
        if (sp.first_token_temperature is not None or sp.first_token_top_k is not None) and not self._warned_fire:
            log.warning("openai policy: FIRE (first_token_temperature/top_k) is not in the API; ignored")
            self._warned_fire = True
        if not prompts:
            return []
        if len(prompts) == 1 or self.concurrency == 1:
            results = [self._sample_or_refusal(p, n, sp) for p in prompts]
        else:
            with ThreadPoolExecutor(max_workers=min(self.concurrency, len(prompts))) as pool:
                results = list(pool.map(lambda p: self._sample_or_refusal(p, n, sp), prompts))
        refused = [r for r in results if isinstance(r, _Refused)]
        self._answered += len(results) - len(refused)
        if refused and not self._answered and len(refused) > 1:
            # every prompt refused and none ever answered: a setting (vLLM says "maximum context length"
            # for a max_tokens too large as well as for a prompt too long), not these prompts
            raise UserError(f"OpenAI-compatible server at {self.base_url} rejected the request: {refused[0].message}")
        for r in refused:
            if r.message not in self._warned_refusals:
                self._warned_refusals.add(r.message)
                log.warning("openai policy: server at %s refused a prompt (%s); it scores as no answer",
                            self.base_url, r.message)
        return [[Completion("", finish_reason="error") for _ in range(n)] if isinstance(r, _Refused) else r
                for r in results]

    def _sample_or_refusal(self, prompt: str, n: int, sp: SamplingParams) -> list[Completion] | _Refused:
        try:
            return self._sample(prompt, n, sp)
        except _Refused as refusal:
            return refusal

    def _sample(self, prompt: str, n: int, sp: SamplingParams) -> list[Completion]:
        """n completions of one prompt: one request with n, then top-ups until there are n."""
        out: list[Completion] = []
        request = 0
        while len(out) < n:
            want = n - len(out) if self._n_ok else 1
            seed = None if sp.seed is None else sp.seed + request
            got = self._request(prompt, want, sp, seed)
            if not got:
                raise UserError(f"OpenAI-compatible server at {self.base_url} returned no choices for model {self.model!r}")
            out.extend(got[:want])
            request += 1
        return out

    def _params(self, n: int, sp: SamplingParams, seed: int | None) -> dict[str, Any]:
        params: dict[str, Any] = {"model": self.model, "n": n, "temperature": sp.temperature,
                                  "max_tokens": sp.max_new_tokens}
        if sp.top_p < 1.0:
            params["top_p"] = sp.top_p
        if sp.stop:
            params["stop"] = list(sp.stop)
        if seed is not None:
            params["seed"] = seed
        if sp.top_k > 0:  # not in OpenAI's API; vLLM, SGLang and llama.cpp read it from the body
            params["extra_body"] = {"top_k": sp.top_k}
        return params

    def _request(self, prompt: str, n: int, sp: SamplingParams, seed: int | None) -> list[Completion]:
        params = self._params(n, sp, seed)
        chat = self.endpoint == "chat"
        if self.want_logprobs:
            params["logprobs"] = True if chat else 1
        if chat:
            fn, params["messages"] = self.client.chat.completions.create, [{"role": "user", "content": prompt}]
        else:
            fn, params["prompt"] = self.client.completions.create, prompt
        try:
            response = self._call(fn, **params)
        except (self._openai.BadRequestError, self._openai.UnprocessableEntityError) as err:
            msg = self._message(err)
            if _about_the_prompt(err, msg):  # this prompt's fault (too long): it costs this prompt
                raise _Refused(msg) from None
            # Servers that refuse logprobs or n > 1: drop the feature once, for good, and retry.
            if self.want_logprobs and "logprob" in msg.lower():
                log.warning("openai policy: server at %s refuses logprobs (%s); sampling without them", self.base_url, msg)
                self.want_logprobs = False
                return self._request(prompt, n, sp, seed)
            if n > 1 and self._n_ok:
                log.warning("openai policy: server at %s refused n=%d (%s); one request per sample", self.base_url, n, msg)
                self._n_ok = False
                return self._request(prompt, 1, sp, seed)
            raise UserError(f"OpenAI-compatible server at {self.base_url} rejected the request: {msg}") from None
        choices = getattr(response, "choices", None) or []  # a server's `"choices": null` is no choices
        return [self._completion(choice, chat) for choice in sorted(choices, key=lambda c: c.index)]

    @staticmethod
    def _completion(choice: Any, chat: bool) -> Completion:
        text = (choice.message.content or "") if chat else (choice.text or "")
        finish = "length" if choice.finish_reason == "length" else "stop"
        logprobs = None
        lp = getattr(choice, "logprobs", None)
        if lp is not None:
            if chat and getattr(lp, "content", None):
                logprobs = [float(t.logprob) for t in lp.content]
            elif not chat and getattr(lp, "token_logprobs", None):
                logprobs = [float(x) if x is not None else 0.0 for x in lp.token_logprobs]
        token_ids = getattr(choice, "token_ids", None) or []
        return Completion(text=text, token_ids=[int(t) for t in token_ids], logprobs=logprobs, finish_reason=finish)

    def close(self) -> None:
        self.client.close()
