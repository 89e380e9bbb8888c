"""The Hugging Face policy on a tiny local Llama/Qwen2: sampling, log-prob consistency, LoRA, save/load."""

from __future__ import annotations

import re

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from _hf_tiny import make_tiny_hf  # noqa: E402

from rungs.errors import UserError  # noqa: E402
from rungs.policies import SamplingParams, load_policy  # noqa: E402
from rungs.policies.hf import naive_log_softmax, selective_log_softmax  # noqa: E402

PROMPTS = ["hi", "what is 2+2? think"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_hf(tmp_path_factory.mktemp("tiny_llama"))


@pytest.fixture(scope="module")
def policy(model_dir):
    return load_policy(f"hf:{model_dir}", device="cpu", dtype="float32")


@pytest.fixture()
def lora(model_dir):
    return load_policy(f"hf:{model_dir}", device="cpu", dtype="float32", lora_rank=4, seed=0)


def _naive(policy, prompt, completion):
    """Unpadded, unbatched full forward + full log-softmax: the reference answer."""
    ids = torch.tensor([prompt + completion])
    with torch.no_grad():
        logits = policy.model(input_ids=ids).logits[0, len(prompt) - 1 : -1]  # [T, V]
    return naive_log_softmax(logits, torch.tensor(completion))


def test_generate_n_samples_and_shapes(policy):
    out = policy.generate(PROMPTS, n=3, sampling=SamplingParams(max_new_tokens=12, seed=0))
    assert [len(c) for c in out] == [3, 3]
    for c in (c for cs in out for c in cs):
        assert 1 <= len(c.token_ids) <= 12
        assert len(c.logprobs) == len(c.token_ids)
        assert all(lp <= 0 for lp in c.logprobs)
        assert c.finish_reason in ("stop", "length")
        if c.finish_reason == "length":
            assert len(c.token_ids) == 12
    texts = {c.text for c in out[0]}
    assert len(texts) > 1  # sampled, not copied


def test_seed_reproducible_and_greedy_deterministic(policy):
    sp = SamplingParams(max_new_tokens=10, seed=7)
    a = policy.generate(PROMPTS, n=2, sampling=sp)
    b = policy.generate(PROMPTS, n=2, sampling=sp)
    assert [[c.token_ids for c in cs] for cs in a] == [[c.token_ids for c in cs] for cs in b]
    unseeded = SamplingParams(max_new_tokens=10)
    assert policy.generate(PROMPTS, n=2, sampling=unseeded) != policy.generate(PROMPTS, n=2, sampling=unseeded)
    g = policy.generate(PROMPTS, n=3, sampling=SamplingParams(temperature=0, max_new_tokens=10))
    for cs in g:
        assert len({tuple(c.token_ids) for c in cs}) == 1
    # Greedy = argmax at every step under the unpadded full forward.
    prompt = policy.encode_prompts(PROMPTS[:1])[0]
    toks = g[0][0].token_ids
    with torch.no_grad():
        logits = policy.model(input_ids=torch.tensor([prompt + toks])).logits[0]
    assert logits[len(prompt) - 1 : -1].argmax(-1).tolist() == toks


def test_stop_strings_cut_text_and_tokens(policy):
    greedy = SamplingParams(temperature=0, max_new_tokens=24)
    full = policy.generate(PROMPTS[:1], sampling=greedy)[0][0]
    assert len(full.text) >= 6
    stop = full.text[3:5]
    cut = policy.generate(PROMPTS[:1], sampling=greedy.with_(stop=(stop,)))[0][0]
    assert cut.text == full.text[: full.text.find(stop)]  # cut before the stop string, as OpenAI does
    assert cut.finish_reason == "stop"
    assert cut.token_ids == full.token_ids[: len(cut.token_ids)]
    assert policy._decode(cut.token_ids).endswith(stop)  # the tokens that wrote it are kept
    # Sampled, n > 1: no text contains a stop string; those that stopped on one end with it.
    stops = tuple("aeiou0123")
    outs = policy.generate(PROMPTS, n=4, sampling=SamplingParams(max_new_tokens=30, seed=3, stop=stops))[1]
    assert sum(policy._decode(c.token_ids)[-1:] in stops for c in outs) >= 2
    for c in outs:
        assert not any(s in c.text for s in stops)
        decoded = policy._decode(c.token_ids)
        if decoded[-1:] in stops:
            assert c.finish_reason == "stop" and decoded == c.text + decoded[-1]


def test_generation_logprobs_match_transformers_scores(policy):
    """Log-probs returned by generate == log-softmax of the raw logits transformers sampled from
    (KV cache, left padding) == logprobs() recomputed == an unpadded naive forward."""
    sp = SamplingParams(max_new_tokens=10, seed=1, top_k=20, temperature=1.3)
    out = policy.generate(PROMPTS, n=2, sampling=sp)
    prompts = policy.encode_prompts(PROMPTS)
    pairs = [(prompts[i], c) for i in range(len(PROMPTS)) for c in out[i]]
    recomputed = policy.logprobs([p for p, _ in pairs], [c.token_ids for _, c in pairs])
    for k, (p, c) in enumerate(pairs):
        got = torch.tensor(c.logprobs)
        assert torch.allclose(got, recomputed.logprobs[k, : len(c.token_ids)], atol=1e-5)
        assert torch.allclose(got, _naive(policy, p, c.token_ids), atol=1e-4)
        assert recomputed.mask[k].sum().item() == len(c.token_ids)

    # transformers' own raw logits at sampling time, on a left-padded batch.
    ids, mask = policy._left_pad(prompts)
    from transformers import GenerationConfig

    cfg = GenerationConfig(do_sample=False, max_new_tokens=6, output_logits=True, return_dict_in_generate=True,
                           pad_token_id=policy.pad_token_id, eos_token_id=None)
    with torch.no_grad():
        res = policy.model.generate(input_ids=ids, attention_mask=mask, generation_config=cfg)
    new = res.sequences[:, ids.shape[1] :]  # [B, 6]
    raw = torch.stack(res.logits, dim=1)  # [B, 6, V]
    want = naive_log_softmax(raw, new)
    lp = policy.logprobs(prompts, new.tolist())
    assert torch.allclose(lp.logprobs, want, atol=1e-4)


def test_generation_logprobs_are_taken_while_sampling(policy, monkeypatch):
    """The sampled tokens' log-probs come from the logits `generate` sampled from (no second
    pass: logprobs() is never called), rows that end early (EOS mid-batch, then padding) keep
    only their own tokens' values, and FIRE's hot first token is scored at temperature 1."""
    from collections import Counter

    sp = SamplingParams(max_new_tokens=12, seed=4, temperature=1.5)
    common = Counter(t for cs in policy.generate(PROMPTS, n=4, sampling=sp) for c in cs for t in c.token_ids)
    # Two frequent tokens as extra end-of-sequence ids: rows stop at different lengths.
    monkeypatch.setattr(policy, "eos_token_ids", sorted({*policy.eos_token_ids, *(t for t, _ in common.most_common(2))}))

    def no_second_pass(*_a, **_k):
        raise AssertionError("generate recomputed log-probs")

    monkeypatch.setattr(policy, "logprobs", no_second_pass)
    fire = sp.with_(first_token_temperature=5.0)
    out = policy.generate(PROMPTS, n=4, sampling=sp) + policy.generate(PROMPTS, n=2, sampling=fire)
    prompts = policy.encode_prompts(PROMPTS) * 2
    lengths = {len(c.token_ids) for cs in out for c in cs}
    assert len(lengths) > 1 and any(c.finish_reason == "stop" for cs in out for c in cs)
    for p, cs in zip(prompts, out):
        for c in cs:
            assert len(c.logprobs) == len(c.token_ids)
            assert torch.allclose(torch.tensor(c.logprobs), _naive(policy, p, c.token_ids), atol=1e-4)


def test_generation_prefills_each_prompt_once(policy):
    """n samples of a prompt share one prefill (its KV cache copied to the n rows): no forward sees
    a full prompt row per sample, and the samples equal those of the unshared path with the same
    seed (the same random draws on the same distributions), log-probs included; also with FIRE,
    stop strings and a gen batch that splits a prompt's samples."""
    backbone = policy._base_model().get_decoder()  # sees rungs' prefill and generate's forwards
    shapes = []
    handle = backbone.register_forward_pre_hook(lambda _m, _a, kw: shapes.append(tuple(kw["input_ids"].shape)),
                                             with_kwargs=True)
    prompts = policy.encode_prompts(PROMPTS)
    width = max(len(p) for p in prompts)
    runs = [SamplingParams(max_new_tokens=10, seed=5, top_k=30),
            SamplingParams(temperature=0, max_new_tokens=8, first_token_temperature=9.0, seed=2),
            SamplingParams(max_new_tokens=16, seed=6, stop=("e", "a"))]
    policy.gen_batch_size = 5  # 2 prompts x 4 samples: the second batch holds both prompts' rows
    try:
        for sp in runs:
            shapes.clear()
            shared = policy.generate(PROMPTS, n=4, sampling=sp)
            assert shapes[0] == (2, width - 1) and shapes[1] == (5, 1) and (5, width) not in shapes
            policy.share_prompt_cache = False
            plain = policy.generate(PROMPTS, n=4, sampling=sp)
            policy.share_prompt_cache = True
            assert [[c.token_ids for c in cs] for cs in shared] == [[c.token_ids for c in cs] for cs in plain]
            assert [[c.text for c in cs] for cs in shared] == [[c.text for c in cs] for cs in plain]
            for cs, ps in zip(shared, plain):
                for c, p in zip(cs, ps):
                    assert torch.allclose(torch.tensor(c.logprobs), torch.tensor(p.logprobs), atol=1e-5)
    finally:
        handle.remove()
        policy.gen_batch_size = 64
        policy.share_prompt_cache = True


@pytest.mark.parametrize("kind", ["linear", "callable"])
def test_chunked_equals_naive(kind):
    """Values, entropy, and gradients (hidden states, head weight and bias) of the chunked
    selective log-softmax equal the naive full-softmax ones; both the hand-written backward
    (nn.Linear head) and the checkpointed generic path."""
    torch.manual_seed(0)
    hidden = torch.randn(37, 16, requires_grad=True)
    linear = torch.nn.Linear(16, 300, bias=True)
    head = linear if kind == "linear" else (lambda x: linear(x))
    targets = torch.randint(0, 300, (37,))
    weights = torch.rand(37)  # a non-uniform upstream gradient
    lp, ent = selective_log_softmax(hidden, head, targets, chunk_size=5, with_entropy=True)
    want = naive_log_softmax(linear(hidden), targets)
    assert torch.allclose(lp, want, atol=1e-5)
    probs = torch.softmax(linear(hidden), -1)
    assert torch.allclose(ent, -(probs * probs.log()).sum(-1), atol=1e-4)
    assert not ent.requires_grad
    params = [hidden, linear.weight, linear.bias]
    got = torch.autograd.grad((lp * weights).sum(), params)
    ref = torch.autograd.grad((want * weights).sum(), params)
    for a, b in zip(got, ref):
        assert torch.allclose(a, b, atol=1e-5)


def test_linear_logprobs_gradcheck():
    from rungs.policies.hf import _LinearLogProbs

    torch.manual_seed(1)
    h = torch.randn(7, 5, dtype=torch.float64, requires_grad=True)
    w = torch.randn(11, 5, dtype=torch.float64, requires_grad=True)
    b = torch.randn(11, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 11, (7,))
    # Forward works in float32 (as in training); compare against float64 finite differences loosely.
    fn = lambda h, w, b: _LinearLogProbs.apply(h, w, b, t, 3, False)[0].double()  # noqa: E731
    assert torch.autograd.gradcheck(fn, (h, w, b), eps=1e-3, atol=1e-2, rtol=1e-2)


def test_policy_logprobs_chunked_paths_agree(policy):
    prompts = policy.encode_prompts(PROMPTS)
    comps = [[10, 20, 30, 40, 50], [60, 70]]
    policy.chunk_bytes = 4 * policy.vocab_size * 8  # 8 positions a chunk
    try:
        a = policy.logprobs(prompts, comps, with_entropy=True)
        split, policy._split = policy._split, False  # the logits_to_keep path
        b = policy.logprobs(prompts, comps, with_entropy=True)
    finally:
        policy._split = split
        policy.chunk_bytes = 64 * 2**20
    assert torch.equal(a.mask, b.mask)
    assert torch.allclose(a.logprobs, b.logprobs, atol=1e-5)
    assert torch.allclose(a.entropy, b.entropy, atol=1e-4)
    for k in range(2):
        assert torch.allclose(a.logprobs[k, : len(comps[k])], _naive(policy, prompts[k], comps[k]), atol=1e-4)
    assert a.logprobs[1, 2:].abs().sum() == 0 and not a.mask[1, 2:].any()


def test_fire_changes_only_first_token(policy):
    base = SamplingParams(temperature=0, max_new_tokens=8)
    fire = base.with_(first_token_temperature=30.0, first_token_top_k=16, seed=0)
    greedy = policy.generate(PROMPTS[:1], sampling=base)[0][0]
    firsts = {c.token_ids[0] for c in policy.generate(PROMPTS[:1], n=8, sampling=fire)[0]}
    assert len(firsts) > 1  # hot first token
    # After the first token the rest is greedy: continuing from greedy's own first token gives greedy.
    for c in policy.generate(PROMPTS[:1], n=8, sampling=fire)[0]:
        if c.token_ids[0] == greedy.token_ids[0]:
            assert c.token_ids == greedy.token_ids


def test_lora_parameters_snapshot_reference_and_grad(lora, tmp_path):
    names = [n for n, p in lora.model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)
    assert {id(p) for p in lora.parameters()} == {id(p) for n, p in lora.model.named_parameters() if "lora_" in n}

    prompts = lora.encode_prompts(PROMPTS)
    comps = [[10, 20, 30], [40, 50, 60, 70]]
    lora.set_reference()
    before = lora.logprobs(prompts, comps).logprobs.detach()
    ref0 = lora.reference_logprobs(prompts, comps)
    assert torch.allclose(before, ref0, atol=1e-6)  # a fresh adapter is the identity

    snap = lora.snapshot()
    lora.train()
    opt = torch.optim.SGD(lora.parameters(), lr=0.5)
    lp = lora.logprobs(prompts, comps)
    assert lp.logprobs.requires_grad
    (-(lp.logprobs * lp.mask).sum()).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in lora.parameters())
    opt.step()
    lora.eval()
    after = lora.logprobs(prompts, comps).logprobs.detach()
    ref1 = lora.reference_logprobs(prompts, comps)
    assert not torch.allclose(after, before, atol=1e-4)
    assert torch.allclose(ref1, ref0, atol=1e-6)  # the reference did not move

    # Adapter frozen as the new reference.
    lora.set_reference()
    assert torch.allclose(lora.reference_logprobs(prompts, comps), after, atol=1e-6)

    # Save/load round trip into a fresh policy, then restore bitwise.
    lora.save(str(tmp_path / "adapter"))
    trained = lora.snapshot()
    lora.restore(snap)
    assert all(torch.equal(v, dict(lora.model.named_parameters())[k]) for k, v in snap.items())
    assert torch.allclose(lora.logprobs(prompts, comps).logprobs.detach(), before, atol=0)
    lora.load(str(tmp_path / "adapter"))
    assert all(torch.equal(v, dict(lora.model.named_parameters())[k]) for k, v in trained.items())
    reloaded = load_policy(f"hf:{tmp_path / 'adapter'}", device="cpu", dtype="float32")
    assert reloaded.lora
    assert torch.allclose(reloaded.logprobs(prompts, comps).logprobs.detach(), after, atol=1e-6)

    lora.reset()
    assert torch.allclose(lora.logprobs(prompts, comps).logprobs.detach(), before, atol=1e-6)


def test_full_finetune_reference_is_a_frozen_copy(model_dir, tmp_path):
    pol = load_policy(f"hf:{model_dir}", device="cpu", dtype="float32")
    prompts, comps = pol.encode_prompts(PROMPTS[:1]), [[10, 11, 12]]
    pol.set_reference()
    before = pol.logprobs(prompts, comps).logprobs.detach()
    opt = torch.optim.SGD(pol.parameters(), lr=1.0)
    (-pol.logprobs(prompts, comps).logprobs.sum()).backward()
    opt.step()
    assert not torch.allclose(pol.logprobs(prompts, comps).logprobs.detach(), before, atol=1e-4)
    assert torch.allclose(pol.reference_logprobs(prompts, comps), before, atol=1e-6)
    pol.save(str(tmp_path / "full"))
    moved = pol.logprobs(prompts, comps).logprobs.detach()
    pol.reset()
    assert torch.allclose(pol.logprobs(prompts, comps).logprobs.detach(), before, atol=1e-6)
    pol.load(str(tmp_path / "full"))
    assert torch.allclose(pol.logprobs(prompts, comps).logprobs.detach(), moved, atol=1e-6)


def test_qwen2_without_chat_template(tmp_path):
    d = make_tiny_hf(tmp_path / "q", arch="qwen2", hidden=32, chat_template=False)
    pol = load_policy(f"hf:{d}", device="cpu", dtype="float32", gradient_checkpointing=True, lora_rank=2)
    ids = pol.encode_prompts(["ab"])[0]
    assert ids == pol.tokenizer("ab")["input_ids"]  # raw prompt, no template
    out = pol.generate(["ab"], n=2, sampling=SamplingParams(max_new_tokens=5, seed=0))
    c = out[0][0]
    assert torch.allclose(torch.tensor(c.logprobs), _naive(pol, ids, c.token_ids), atol=1e-4)
    pol.train()
    lp = pol.logprobs([ids], [c.token_ids])
    lp.logprobs.sum().backward()
    assert any(p.grad is not None for p in pol.parameters())
    # Checkpointed layers drop KV caches in training: a shared prompt falls back to one forward.
    twice = pol.logprobs([ids, ids], [c.token_ids, c.token_ids[:2]])
    assert torch.allclose(twice.logprobs[0], lp.logprobs[0].detach(), atol=1e-5)
    assert torch.allclose(twice.logprobs[1, :2], lp.logprobs[0, :2].detach(), atol=1e-5)


def test_bad_specs_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="no such directory"):
        load_policy(f"hf:{tmp_path / 'nope'}", device="cpu")
    with pytest.raises(UserError, match="unknown option 'lora_rnk'"):
        load_policy(f"hf:{tmp_path}", lora_rnk=4)
    with pytest.raises(UserError, match="needs a model"):
        load_policy("hf")
    with pytest.raises(UserError, match="dtype"):
        load_policy(f"hf:{tmp_path}", dtype="float8", device="cpu")


def _one_line_error(spec: str) -> str:
    with pytest.raises(UserError) as info:
        load_policy(spec, device="cpu")
    message = str(info.value)
    assert "\n" not in message
    return message


def test_local_path_specs_are_checked_before_transformers(tmp_path, monkeypatch):
    """A path that does not exist, or a directory that is not a model, is named in rungs' words,
    not in transformers' hub-id or tokenizer errors; `~` is expanded."""
    expected = "no such directory; expected a transformers model directory or a hub id"
    assert _one_line_error(f"hf:{tmp_path / 'nope'}") == f"hf:{tmp_path / 'nope'}: {expected}"
    monkeypatch.chdir(tmp_path)
    assert _one_line_error("hf:./nope") == f"hf:./nope: {expected}"
    assert _one_line_error("hf:../nope") == f"hf:../nope: {expected}"
    monkeypatch.setenv("HOME", str(tmp_path))
    assert _one_line_error("hf:~/nope") == f"hf:{tmp_path / 'nope'}: {expected}"
    (tmp_path / "empty").mkdir()
    for spec in (f"hf:{tmp_path / 'empty'}", "hf:~/empty", "hf:empty"):
        message = _one_line_error(spec)
        assert message.startswith(f"hf:{spec[3:].replace('~', str(tmp_path))}: no config.json, so not a "
                                  "transformers model directory; expected a directory written by save_pretrained")
    (tmp_path / "gguf_dir").mkdir()
    (tmp_path / "gguf_dir" / "m.Q4_K_M.gguf").write_bytes(b"GGUF")
    assert _one_line_error(f"hf:{tmp_path / 'gguf_dir'}").endswith(
        f"it holds the GGUF file m.Q4_K_M.gguf: expected hf:{tmp_path / 'gguf_dir' / 'm.Q4_K_M.gguf'}")
    (tmp_path / "file").write_text("x")
    assert _one_line_error("hf:./file").startswith("hf:./file: a file, not a directory")


def test_transformers_errors_keep_their_whole_first_sentence(model_dir, tmp_path):
    """A directory with config.json but no tokenizer: transformers' message starts "... from one
    of: " and goes on over several lines; the UserError keeps the whole sentence, in one line."""
    import shutil

    (tmp_path / "config_only").mkdir()
    shutil.copy(model_dir / "config.json", tmp_path / "config_only" / "config.json")
    message = _one_line_error(f"hf:{tmp_path / 'config_only'}")
    assert message.startswith(f"hf policy: cannot load the tokenizer of model '{tmp_path / 'config_only'}': "
                              "Couldn't instantiate the backend tokenizer from one of: (1) ")
    assert message.endswith(".") and "(3) " in message


def test_error_line():
    from rungs.policies.hf import error_line

    assert error_line(ValueError("one line.\nmore\n")) == "one line."
    assert error_line(ValueError("from one of: \n(1) a,\n(2) b or\n(3) c.\nYou need x.")) == "from one of: (1) a, (2) b or (3) c."
    assert error_line(OSError("  \n")) == "OSError"
    assert error_line(ValueError("x" * 500), limit=50) == "x" * 47 + "..."


def test_spec_with_surrounding_spaces_loads(model_dir):
    pol = load_policy(f"hf: {model_dir} ", device="cpu", dtype="float32")
    assert pol.path == str(model_dir) and pol.base_path == str(model_dir)


def _scores_and_grads(pol, prompts, comps, weights):
    pol.train()
    pol.model.zero_grad(set_to_none=True)
    lp = pol.logprobs(prompts, comps, with_entropy=True)
    (lp.logprobs * weights).sum().backward()
    grads = {n: p.grad.clone() for n, p in pol.model.named_parameters() if p.grad is not None}
    pol.model.zero_grad(set_to_none=True)
    pol.eval()
    return lp, grads


@pytest.mark.parametrize("split", [True, False])
def test_shared_prompt_scoring_equals_one_forward(lora, split):
    """Rows grouped by prompt (each distinct prompt run once, its KV cache copied to its rows) give
    the log-probs, entropies and LoRA gradients of the plain one-forward path, including through
    the prompt's keys and values; prompts of different lengths, interleaved, and ragged or empty
    completions."""
    torch.manual_seed(0)
    with torch.no_grad():  # a non-identity adapter, so the prompt's states depend on it
        for p in lora.parameters():
            p.add_(0.1 * torch.randn_like(p))
    a, b, c = lora.encode_prompts(["hi", "what is 2+2? think", "x"])
    prompts = [a, b, a, a, b, c, b]
    comps = [[10, 20, 30, 40], [11], [12, 13, 14, 15, 16, 17], [], [18, 19, 20], [21, 22], [23, 24, 25, 26, 27]]
    weights = torch.rand(len(prompts), 6)
    lora._split, saved = split, lora._split
    try:
        shared, g_shared = _scores_and_grads(lora, prompts, comps, weights)
        lora.share_prompt_cache = False
        plain, g_plain = _scores_and_grads(lora, prompts, comps, weights)
    finally:
        lora._split, lora.share_prompt_cache = saved, True
    assert torch.equal(shared.mask, plain.mask)
    assert torch.allclose(shared.logprobs, plain.logprobs, atol=1e-5)
    assert torch.allclose(shared.entropy, plain.entropy, atol=1e-4)
    assert shared.logprobs[3].abs().sum() == 0 and not shared.mask[3].any()
    assert g_shared.keys() == g_plain.keys() and g_plain
    for name, g in g_plain.items():
        # float32 sums in another order: the error scales with the tensor, not with each element
        # (an element near 0 can differ by 1e-6 of the tensor's largest); a real fault moves them
        # by 10% or more (test_shared_prompt_scoring_is_used_and_grads_flow_through_the_cache)
        scale = float(g.abs().max())
        assert torch.allclose(g_shared[name], g, rtol=1e-4, atol=1e-5 * scale), name


def test_shared_prompt_scoring_is_used_and_grads_flow_through_the_cache(lora, monkeypatch):
    """GRPO's micro-batches (G completions of one prompt) take the shared path; and the gradient
    equality above is sensitive to the prompt pass: with the copied cache detached, LoRA's
    gradients change a lot."""
    from transformers.cache_utils import DynamicLayer

    torch.manual_seed(1)
    with torch.no_grad():
        for p in lora.parameters():
            p.add_(0.1 * torch.randn_like(p))
    a = lora.encode_prompts(PROMPTS[1:])[0]
    prompts, comps = [a] * 4, [[10, 11, 12], [13, 14], [15, 16, 17, 18], [19]]
    weights = torch.ones(4, 4)
    calls = []
    shared_hidden = lora._shared_hidden
    monkeypatch.setattr(lora, "_shared_hidden", lambda *a, **k: calls.append(1) or shared_hidden(*a, **k))
    _, grads = _scores_and_grads(lora, prompts, comps, weights)
    assert calls == [1]

    select = DynamicLayer.batch_select_indices

    def detached(self, indices):
        select(self, indices)
        self.keys, self.values = self.keys.detach(), self.values.detach()

    monkeypatch.setattr(DynamicLayer, "batch_select_indices", detached)
    _, cut = _scores_and_grads(lora, prompts, comps, weights)
    assert max(float((grads[n] - cut[n]).abs().max() / grads[n].abs().max()) for n in grads) > 0.1


def test_shared_prompt_scoring_full_model_and_no_grad(model_dir):
    """Full fine-tuning: every weight's gradient matches; the reference (no grad) matches too."""
    pol = load_policy(f"hf:{model_dir}", device="cpu", dtype="float32")
    a, b = pol.encode_prompts(PROMPTS)
    prompts, comps = [a, a, b, b, b], [[5, 6, 7], [8, 9], [10], [11, 12, 13, 14], [15, 16]]
    weights = torch.rand(5, 4)
    shared, g_shared = _scores_and_grads(pol, prompts, comps, weights)
    pol.share_prompt_cache = False
    plain, g_plain = _scores_and_grads(pol, prompts, comps, weights)
    pol.set_reference()
    ref_plain = pol.reference_logprobs(prompts, comps)
    pol.share_prompt_cache = True
    assert torch.allclose(pol.reference_logprobs(prompts, comps), ref_plain, atol=1e-5)
    assert torch.allclose(shared.logprobs, plain.logprobs, atol=1e-5)
    assert len(g_plain) == len(list(pol.model.parameters()))
    for name, g in g_plain.items():
        # float32 sums in another order: the error scales with the tensor, not with each element
        # (an element near 0 can differ by 1e-6 of the tensor's largest); a real fault moves them
        # by 10% or more (test_shared_prompt_scoring_is_used_and_grads_flow_through_the_cache)
        scale = float(g.abs().max())
        assert torch.allclose(g_shared[name], g, rtol=1e-4, atol=1e-5 * scale), name


def test_lora_wrap_sample_score_and_save_warn_about_nothing_the_user_cannot_act_on(model_dir, tmp_path, monkeypatch):
    """No deprecation noise from rungs' own calls (the KV cache under transformers' current name), and
    no hub lookup when an adapter is saved (offline, or for a base named like `smollm2`, peft warns)."""
    import warnings

    from transformers.utils import generic

    said: list[str] = []
    monkeypatch.setattr(generic.logger, "warning_once", lambda msg, *a, **k: said.append(str(msg)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pol = load_policy(f"hf:{model_dir}", device="cpu", dtype="float32", lora_rank=4, seed=0)
        out = pol.generate(PROMPTS, n=3, sampling=SamplingParams(max_new_tokens=6, seed=0))  # shared prefill
        prompts = pol.encode_prompts(PROMPTS * 2)
        pol.logprobs(prompts, [list(c.token_ids) or [1] for cs in out for c in cs[:1]] * 2)  # shared scoring
        pol.model.peft_config["default"].base_model_name_or_path = "not-a-local-model"  # as `smollm2` is
        pol.save(str(tmp_path / "adapter"))
    noise = [str(w.message) for w in caught] + said
    assert not [m for m in noise if "deprecated" in m or "config file" in m or "fetch remote" in m], noise
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()


def test_raw_prompts_give_the_model_the_text_as_it_is(model_dir):
    """raw_prompts: no chat template, the tokenizer's BOS added unless the text starts with it, so a
    template's output handed back raw encodes to exactly the templated ids (budget forcing's need)."""
    templated = load_policy(f"hf:{model_dir}", device="cpu", dtype="float32")
    raw = load_policy(f"hf:{model_dir}", device="cpu", dtype="float32", raw_prompts=True)
    tok = raw.tokenizer
    assert raw.format_prompt("2+2=") == "2+2=" and templated.format_prompt("2+2=") != "2+2="
    assert raw.encode_prompts(["2+2="]) == [tok("2+2=")["input_ids"]]  # what the tokenizer adds by itself
    text = templated.format_prompt("hi")
    assert text.startswith(tok.bos_token) and raw.encode_prompts([text]) == templated.encode_prompts(["hi"])
    greedy = SamplingParams(temperature=0.0, max_new_tokens=6)
    assert raw.generate([text], 1, greedy)[0][0].token_ids == templated.generate(["hi"], 1, greedy)[0][0].token_ids


def test_serve_completions_use_the_prompt_raw_and_chat_uses_the_template(policy):
    """`rungs serve` on an hf policy: /v1/completions continues the prompt as given (vLLM's
    convention), /v1/chat/completions wraps it in the chat template; the policy's mode is restored."""
    from rungs.serve import make_server

    srv = make_server(policy, "127.0.0.1", 0, model_name="tiny-hf")
    try:
        body = {"max_tokens": 6, "temperature": 0}
        completion = srv.app.completions({**body, "prompt": "2+2="})["choices"][0]
        chat = srv.app.chat({**body, "messages": [{"role": "user", "content": "2+2="}]})["choices"][0]
    finally:
        srv.server_close()
    greedy = SamplingParams(temperature=0.0, max_new_tokens=6)
    assert policy.raw_prompts is False
    assert chat["token_ids"] == policy.generate(["2+2="], 1, greedy)[0][0].token_ids
    policy.raw_prompts = True
    try:
        want = policy.generate(["2+2="], 1, greedy)[0][0].token_ids
    finally:
        policy.raw_prompts = False
    assert completion["token_ids"] == want and want != chat["token_ids"]


def test_budget_forcing_runs_on_an_hf_policy_with_a_chat_template(policy, monkeypatch):
    """The first prompt is templated once; each later round continues that text raw (no new chat
    turn); the thinking budget is cut with the delimiter and the answer budget follows."""
    from rungs.strategies.budget_forcing import BudgetForcing

    seen = []
    real = type(policy).generate

    def spy(self, prompts, n=1, sampling=None):
        seen.append((self.raw_prompts, list(prompts)))
        return real(self, prompts, n, sampling)

    monkeypatch.setattr(type(policy), "generate", spy)
    (row,) = BudgetForcing(waits=1, think_tokens=5, answer_tokens=4).generate(
        policy, ["2+2="], 1, SamplingParams(max_new_tokens=64, seed=0))
    start = policy.format_prompt("2+2=")
    assert policy.raw_prompts is False and len(seen) >= 2 and all(raw for raw, _ in seen)
    assert all(p.startswith(start) for _, prompts in seen for p in prompts)
    assert seen[-1][1][0].endswith("</think>") and row[0].text.count("</think>") == 1
    assert row[0].num_tokens <= 5 + 4


def test_a_huge_n_is_refused_in_one_line_before_anything_is_sampled(policy, monkeypatch):
    """The tiny policy's memory check (`check_output_memory`), on a machine of 1 GiB: a --n whose
    completions could not fit is one line naming the count, not an allocation error after hours;
    greedy too (its one sample a prompt is copied n times). Rows are sampled gen_batch_size a call."""
    import rungs.policies.base as base

    monkeypatch.setattr(base, "physical_memory_bytes", lambda: 2**30)
    monkeypatch.setattr(type(policy.model), "generate", lambda *a, **k: pytest.fail("sampled before refusing"))
    for sp in (SamplingParams(max_new_tokens=64, seed=0), SamplingParams(temperature=0, max_new_tokens=64)):
        with pytest.raises(UserError, match=r"^hf policy: 1000000 samples of each of 2 prompts of up to 64 tokens would "
                                            r"need about 5\.6 GiB .* expected at most about 177536 samples per prompt "
                                            r"\(a smaller --n\)$"):
            policy.generate(PROMPTS, n=1_000_000, sampling=sp)
        with pytest.raises(UserError, match=r"^hf policy: 1000000 samples"):
            policy.check_generate(PROMPTS, n=1_000_000, sampling=sp)  # the same refusal, for a job to ask first
        policy.check_generate(PROMPTS, n=1_000, sampling=sp)  # fits: no refusal


def test_max_new_tokens_is_capped_at_the_models_context(policy, monkeypatch):
    """As the tiny policy's: prompt + completion fit the model's positions (a model with learned
    positions fails on an index past them; any other samples for as long as max_new_tokens says)."""
    from types import SimpleNamespace

    monkeypatch.setattr(policy.model.config, "max_position_embeddings", 40)
    room = 40 - max(len(ids) for ids in policy.encode_prompts(PROMPTS))
    asked = []
    real = type(policy.model).generate

    def capped(model, *args, generation_config, **kwargs):
        asked.append(generation_config.max_new_tokens)
        if generation_config.max_new_tokens > room:
            pytest.fail(f"asked for {generation_config.max_new_tokens} new tokens past the model's 40 positions")
        return real(model, *args, generation_config=generation_config, **kwargs)

    monkeypatch.setattr(type(policy.model), "generate", capped)
    out = policy.generate(PROMPTS, n=2, sampling=SamplingParams(max_new_tokens=10**6, seed=0))
    assert policy.context_length == 40 and asked == [room]
    assert all(1 <= len(c.token_ids) <= room for row in out for c in row)
    # YaRN keeps the original length and a factor beside max_position_embeddings (Qwen2.5: 32,768 x 4)
    yarn = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}
    for config, length in ((SimpleNamespace(max_position_embeddings=32768, rope_scaling=yarn), 131072),
                           (SimpleNamespace(), None)):
        monkeypatch.setattr(policy, "_base_model", lambda model=None, config=config: SimpleNamespace(config=config))
        assert policy.context_length == length


def test_options_of_the_wrong_type_or_range_are_one_line_errors(model_dir):
    """--policy-option values arrive as text: a wrong one named in one line, never a traceback or a
    silent reading (lora_rank=-3 used to train every weight; raw_prompts=maybe meant true)."""
    cases = {"lora_rank": ("abc", "expected an integer"), "seed": ("abc", "expected an integer or none"),
             "lora_dropout": (5, "expected a number in [0, 1)"), "raw_prompts": ("maybe", "expected true or false"),
             "gen_batch_size": (0, "expected an integer >= 1")}
    for name, (value, message) in cases.items():
        with pytest.raises(UserError, match=rf"hf policy option: {name}: {re.escape(message)}"):
            load_policy(f"hf:{model_dir}", device="cpu", **{name: value})
    with pytest.raises(UserError, match="lora_rank: expected an integer >= 0"):
        load_policy(f"hf:{model_dir}", device="cpu", lora_rank=-3)
    with pytest.raises(UserError, match="Target modules nonexistent_proj not found.*'all-linear' fits any model"):
        load_policy(f"hf:{model_dir}", device="cpu", lora_rank=2, target_modules="nonexistent_proj")
    assert load_policy(f"hf:{model_dir}", device="cpu", raw_prompts="yes", lora_rank="2").raw_prompts is True


def test_an_adapter_saved_on_a_relative_base_path_reloads_from_anywhere(model_dir, tmp_path, monkeypatch):
    """peft writes the base model's path into each adapter: it was the relative `hf:./model`, so the
    adapter reloaded only from the directory the run started in (and was tried as a hub id elsewhere)."""
    import json

    monkeypatch.chdir(model_dir.parent)
    lora = load_policy(f"hf:./{model_dir.name}", device="cpu", dtype="float32", lora_rank=2, seed=0)
    lora.save(str(tmp_path / "adapter"))
    recorded = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert recorded == str(model_dir.resolve())
    monkeypatch.chdir(tmp_path)
    again = load_policy(f"hf:{tmp_path / 'adapter'}", device="cpu", dtype="float32")
    assert again.lora and again.base_path == str(model_dir.resolve())


def test_rungs_train_with_lora_is_reproducible(model_dir, tmp_path):
    """`rungs train` now seeds the LoRA initialisation from --seed, as ladder and ttrl do: two runs
    with the same settings are the same run (their step-1 gradient norms differed)."""
    import json

    from rungs.cli import main

    args = ["train", "--task", "integration", "--problems", "builtin:integration-train", "--limit", "4",
            "--policy", f"hf:{model_dir}", "--policy-option", "lora_rank=4", "--max-steps", "2", "--save-steps", "0",
            "--num-generations", "4", "--max-completion-length", "8", "--prompts-per-step", "2",
            "--reward-funcs", "random", "--learning-rate", "1e-2", "--threads", "1", "--workers", "1", "--no-progress"]
    norms = []
    for run in ("a", "b"):
        assert main([*args, "--out", str(tmp_path / run)]) == 0
        events = [json.loads(line) for line in (tmp_path / run / "events.jsonl").read_text().splitlines()]
        norms.append([e["grad_norm"] for e in events if e.get("type") == "train"])
    assert norms[0] == norms[1] and len(norms[0]) == 2


def test_no_progress_silences_transformers_bars_too(model_dir, tmp_path):
    """--no-progress hid rungs' bars but not transformers' "Loading weights" / "Writing model shards"."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_PROGRESS_BARS"}
    argv = [sys.executable, "-m", "rungs", "train", "--task", "integration", "--problems", "builtin:integration-train",
            "--limit", "2", "--policy", f"hf:{model_dir}", "--max-steps", "1", "--num-generations", "2",
            "--max-completion-length", "4", "--prompts-per-step", "1", "--reward-funcs", "random", "--threads", "1",
            "--workers", "1", "--out", str(tmp_path / "run")]
    done = subprocess.run([*argv, "--no-progress"], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Loading weights" not in done.stderr and "Writing model" not in done.stderr and "it/s]" not in done.stderr
