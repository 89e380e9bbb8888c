"""`rungs serve` driven end to end by the `openai` policy (the real openai client), on 127.0.0.1 only."""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request

import pytest

pytest.importorskip("openai")
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from _hf_tiny import make_tiny_hf  # noqa: E402

from rungs.errors import UserError  # noqa: E402
from rungs.policies import SamplingParams, load_policy  # noqa: E402
from rungs.policies.openai_api import OpenAIPolicy, normalize_base_url  # noqa: E402
from rungs.serve import make_server  # noqa: E402


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    return load_policy(f"hf:{make_tiny_hf(tmp_path_factory.mktemp('served'))}", device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def server(local):
    srv = make_server(local, "127.0.0.1", 0, model_name="tiny-test")
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def url(server):
    return f"http://127.0.0.1:{server.server_address[1]}/v1"


def test_chat_n_samples_logprobs_match_local_policy(url, local):
    remote = load_policy(f"openai:{url}", max_retries=0)  # the one served model is found by itself
    assert remote.model == "tiny-test"
    out = remote.generate(["hi", "what is 2+2?"], n=3, sampling=SamplingParams(max_new_tokens=8, seed=5))
    assert [len(cs) for cs in out] == [3, 3]
    prompts = local.encode_prompts(["hi", "what is 2+2?"])
    for i, cs in enumerate(out):
        for c in cs:
            assert c.token_ids and len(c.logprobs) == len(c.token_ids)
            want = local.logprobs([prompts[i]], [c.token_ids]).logprobs[0]
            assert torch.allclose(torch.tensor(c.logprobs), want, atol=1e-5)
    assert len({tuple(c.token_ids) for c in out[0]}) > 1
    # Same seed, same samples as sampling locally.
    direct = local.generate(["hi"], n=3, sampling=SamplingParams(max_new_tokens=8, seed=5))[0]
    assert [c.token_ids for c in direct] == [c.token_ids for c in out[0]]
    remote.close()


def test_completions_endpoint_and_stop_strings(url, local):
    remote = OpenAIPolicy(url, model="tiny-test", endpoint="completions", max_retries=0)
    out = remote.generate(["hi"], n=2, sampling=SamplingParams(max_new_tokens=6, seed=1))[0]
    assert len(out) == 2 and all(c.logprobs and len(c.logprobs) == len(c.token_ids) for c in out)
    greedy = SamplingParams(temperature=0, max_new_tokens=20)
    full = local.generate(["hi"], sampling=greedy)[0][0]
    local.raw_prompts = True  # /v1/completions continues the prompt as it is, with no chat template (vLLM)
    try:
        full_raw = local.generate(["hi"], sampling=greedy)[0][0]
    finally:
        local.raw_prompts = False
    for endpoint, want in (("chat", full), ("completions", full_raw)):
        remote.endpoint = endpoint
        stop = want.text[2:4]
        got = remote.generate(["hi"], sampling=greedy.with_(stop=(stop,)))[0][0]
        assert got.text == want.text[: want.text.find(stop)]  # cut before the stop string
        assert got.finish_reason == "stop"
    assert full_raw.token_ids != full.token_ids
    stop = full.text[2:4]
    # The raw response names the stop string, as vLLM does.
    raw = remote.client.chat.completions.create(model="tiny-test", messages=[{"role": "user", "content": "hi"}],
                                                temperature=0, max_tokens=20, stop=[stop])
    assert raw.choices[0].stop_reason == stop


def test_servers_that_ignore_n_are_topped_up(url, server):
    app = server.app
    original = app._sampling

    def one_at_a_time(body):
        n, sp = original(body)
        return 1, sp  # a server that ignores n (llama.cpp, ollama)

    app._sampling = one_at_a_time
    try:
        remote = OpenAIPolicy(url, model="tiny-test", max_retries=0)
        out = remote.generate(["hi"], n=4, sampling=SamplingParams(max_new_tokens=6, seed=2))[0]
    finally:
        app._sampling = original
    assert len(out) == 4
    assert len({tuple(c.token_ids) for c in out}) > 1  # seed + k per extra request, not 4 copies


def test_errors_are_one_line(url):
    remote = OpenAIPolicy(url, model="no-such-model", max_retries=0)
    with pytest.raises(UserError, match="no-such-model"):
        remote.generate(["hi"])
    # Raw HTTP: OpenAI's error shape, and the server keeps serving.
    req = urllib.request.Request(f"{url}/chat/completions", data=json.dumps(
        {"messages": [{"role": "user", "content": "hi"}], "stream": True}).encode(), method="POST",
        headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=10)
    assert info.value.code == 400
    assert "stream" in json.loads(info.value.read())["error"]["message"]
    # what is not served is refused, naming the field the client sent
    for extra, param in (({"top_logprobs": 3, "logprobs": True}, "top_logprobs"), ({"max_tokens": 0}, "max_tokens"),
                         ({"max_completion_tokens": 0}, "max_completion_tokens")):
        req = urllib.request.Request(f"{url}/chat/completions", data=json.dumps(
            {"messages": [{"role": "user", "content": "hi"}], **extra}).encode(), method="POST",
            headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req, timeout=10)
        error = json.loads(info.value.read())["error"]
        assert info.value.code == 400 and error["param"] == param and param in error["message"]
    with urllib.request.urlopen(f"{url}/models", timeout=10) as resp:
        assert json.loads(resp.read())["data"][0]["id"] == "tiny-test"


def test_unreachable_server_names_the_url():
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    with pytest.raises(UserError) as info:
        load_policy(f"openai:{url}", max_retries=0)
    message = str(info.value)
    assert message == f"cannot reach OpenAI-compatible server at {url}: connection refused"
    with pytest.raises(UserError, match=f"cannot reach OpenAI-compatible server at {url}"):
        OpenAIPolicy(url, model="m", max_retries=1).generate(["hi"])


def test_urls_and_options():
    assert normalize_base_url("127.0.0.1:8000") == "http://127.0.0.1:8000/v1"
    assert normalize_base_url("http://127.0.0.1:8000/v1/") == "http://127.0.0.1:8000/v1"
    assert normalize_base_url("http://h:1/api/v1") == "http://h:1/api/v1"
    with pytest.raises(UserError, match="unknown option 'modle'"):
        load_policy("openai:http://127.0.0.1:1/v1", modle="x")
    with pytest.raises(UserError, match="endpoint"):
        OpenAIPolicy("http://127.0.0.1:1/v1", model="m", endpoint="responses")


def test_rungs_generate_through_the_server(url, capsys):
    from rungs.cli import main

    argv = ["generate", "--task", "countdown", "--problem", "numbers: 3 7 25 50; target: 72",
            "--policy", f"openai:{url}", "--n", "2", "--max-new-tokens", "8", "--seed", "0"]
    assert main([*argv, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["sample"] for r in rows] == [0, 1]
    assert all(r["status"] == "no_answer" and r["reward"] == 0 and r["tokens"] > 0 for r in rows)
    assert main(argv) == 0
    assert capsys.readouterr().out.rstrip().endswith("0/2 correct")
    assert main([*argv[:-2], "--n", "0"]) == 2  # a one-line UserError, exit status 2
    assert "--n must be >= 1" in capsys.readouterr().err


def test_a_server_answering_choices_null_is_one_line(url, monkeypatch):
    from types import SimpleNamespace

    remote = OpenAIPolicy(url, model="tiny-test", max_retries=0)
    monkeypatch.setattr(remote.client.chat.completions, "create", lambda **_: SimpleNamespace(choices=None))
    with pytest.raises(UserError, match="returned no choices"):
        remote.generate(["hi"], n=1, sampling=SamplingParams(max_new_tokens=4))


def test_jobs_can_hand_the_openai_policy_their_seed():
    """ttt, ttrl and ladder pass every policy task= and seed=; the openai policy samples with each
    request's seed instead, and used to refuse the option (so `rungs ttt --steps 0 --policy openai:URL` could not run)."""
    from rungs.policies import load_policy

    policy = load_policy("openai:http://127.0.0.1:1/v1", task="arc", seed=3, model="x", max_retries=0)
    assert isinstance(policy, OpenAIPolicy)
    with pytest.raises(UserError, match="unknown option 'sed'"):
        load_policy("openai:http://127.0.0.1:1/v1", sed=3, model="x")
