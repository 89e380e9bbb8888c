"""The embedded tiny policy: generation, log-probs, KV cache, persistence, rollback, SFT.

Everything runs on a small model built here (d_model 64, 2 layers) and a toy task defined here
("add two small numbers"), so the tests need neither the real tasks nor a shipped checkpoint.
"""

from __future__ import annotations

import random
from collections import defaultdict

import pytest
import torch

from rungs.errors import UserError
from rungs.policies import SamplingParams, load_policy
from rungs.policies.tiny import CharTokenizer, TinyPolicy
from rungs.tasks.base import Task
from rungs.train.sft import SFTConfig, encode_examples, generate_problems, sft_loss, train_sft
from rungs.types import Problem, Status, Verdict

SMALL = {"d_model": 64, "n_layers": 2, "n_heads": 2, "max_seq_len": 48}


class AddTask(Task):
    """Toy task: "a+b" -> a+b, with `difficulty` digits per operand."""

    name = "toy-add"
    description = "add two small numbers"
    needs_answer = True
    alphabet = "0123456789+"

    def prompt(self, problem: Problem, style: str = "instruct") -> str:
        return problem.text if style == "compact" else f"Compute {problem.text}."

    def verify_answer(self, problem: Problem, answer: str) -> Verdict:
        if answer.strip() == problem.answer:
            return Verdict(1.0, Status.CORRECT, answer=answer)
        return Verdict.fail(Status.WRONG, answer=answer)

    def generate(self, n: int, difficulty: float, seed: int = 0) -> list[Problem]:
        rng = random.Random(seed)
        top = 10 ** max(1, int(difficulty))
        out = []
        for i in range(n):
            a, b = rng.randrange(top), rng.randrange(top)
            out.append(Problem(f"add-{seed}-{i}", f"{a}+{b}", str(a + b), {"difficulty": difficulty}))
        return out


def fresh(seed: int = 0) -> TinyPolicy:
    return TinyPolicy.new(alphabets=[AddTask.alphabet], seed=seed, **SMALL)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> TinyPolicy:
    """A toy model trained a little, so that it emits <answer>...</answer><eos> on its own."""
    out = tmp_path_factory.mktemp("toy-sft")
    cfg = SFTConfig(task="toy-add", steps=120, batch_size=32, lr=3e-3, warmup_steps=10, difficulty_min=1,
                    difficulty_max=1, train_problems=100, eval_every=0, eval_problems=0, report_problems=0,
                    out=str(out), progress=False, max_new_tokens=16, verifier="inline")
    policy = fresh()
    train_sft(cfg, AddTask(), policy, log=lambda s: None)
    return policy


GREEDY = SamplingParams(temperature=0.0, max_new_tokens=12)


# -- tokenizer --------------------------------------------------------------------------------------
def test_tokenizer_markers_round_trip_and_unknowns_map_to_unk():
    tok = CharTokenizer.build(["0123456789+"])
    ids = tok.encode("<answer>x**3</answer>")
    assert ids[0] == tok.answer_open_id and ids[-1] == tok.answer_close_id and len(ids) == 6
    assert tok.decode(ids) == "<answer>x**3</answer>"
    assert tok.encode("é\x00") == [tok.unk_id, tok.unk_id]
    assert tok.encode("<eos>") != [tok.eos_id]  # control tokens are never spelled in text
    assert CharTokenizer.from_dict(tok.to_dict()).pieces == tok.pieces


def test_tokenizer_adds_extra_alphabet_characters():
    tok = CharTokenizer.build(["αβ"])
    assert tok.decode(tok.encode("α+β")) == "α+β"


# -- generation -------------------------------------------------------------------------------------
def test_generate_shapes_and_finish_reasons(trained):
    prompts = ["3+4", "12+5"]
    out = trained.generate(prompts, n=3, sampling=SamplingParams(temperature=1.0, max_new_tokens=4, seed=1))
    assert len(out) == 2 and all(len(row) == 3 for row in out)
    for row in out:
        for c in row:
            assert len(c.token_ids) == len(c.logprobs) <= 4
            if c.finish_reason == "length":
                assert len(c.token_ids) == 4 and c.token_ids[-1] != trained.tokenizer.eos_id
            else:
                assert c.finish_reason == "stop" and c.token_ids[-1] == trained.tokenizer.eos_id
    # Greedy, with room to finish: the trained toy model closes its answer and stops on <eos>.
    (c,), = trained.generate(["3+4"], sampling=GREEDY)
    assert c.finish_reason == "stop" and c.token_ids[-1] == trained.tokenizer.eos_id
    assert c.text.startswith("<answer>") and c.text.endswith("</answer>") and "<eos>" not in c.text
    assert AddTask().extract_answer(c.text) is not None


def test_stop_strings_cut_the_text():
    policy = fresh()
    (full,), = policy.generate(["1+2"], sampling=GREEDY)
    stop = full.text[2:4]
    (cut,), = policy.generate(["1+2"], sampling=GREEDY.with_(stop=(stop,)))
    assert cut.finish_reason == "stop"
    assert cut.text == full.text[: full.text.find(stop)]
    assert cut.token_ids == full.token_ids[: len(cut.token_ids)]


def test_greedy_is_deterministic_and_independent_of_the_batch(trained):
    alone = trained.generate(["7+8"], sampling=GREEDY)[0][0]
    again = trained.generate(["7+8"], sampling=GREEDY)[0][0]
    batched = trained.generate(["1+1", "7+8", "123456+987654321", "5"], n=2, sampling=GREEDY)
    assert alone.token_ids == again.token_ids
    for c in batched[1]:
        assert c.token_ids == alone.token_ids
        assert c.logprobs == pytest.approx(alone.logprobs, abs=1e-4)


def test_seed_reproducibility():
    policy = fresh()
    params = SamplingParams(temperature=1.0, max_new_tokens=10, seed=123)
    a = policy.generate(["1+2", "33+4"], n=4, sampling=params)
    b = policy.generate(["1+2", "33+4"], n=4, sampling=params)
    c = policy.generate(["1+2", "33+4"], n=4, sampling=params.with_(seed=124))
    ids = lambda out: [x.token_ids for row in out for x in row]  # noqa: E731
    assert ids(a) == ids(b)
    assert ids(a) != ids(c)


@pytest.mark.parametrize("sampling", [
    SamplingParams(temperature=1.0, max_new_tokens=10, seed=5),
    SamplingParams(temperature=0.7, top_k=5, top_p=0.9, max_new_tokens=10, seed=6),
])
def test_generate_logprobs_equal_recomputed_plain_logprobs(sampling):
    policy = fresh()
    prompts = ["1+2", "345+6", "9"]
    out = policy.generate(prompts, n=2, sampling=sampling)
    prompt_ids = [ids for ids in policy.encode_prompts(prompts) for _ in range(2)]
    comps = [c for row in out for c in row]
    lp = policy.logprobs(prompt_ids, [c.token_ids for c in comps], with_entropy=True)
    assert lp.logprobs.shape == lp.mask.shape == lp.entropy.shape == (6, max(len(c.token_ids) for c in comps))
    for i, c in enumerate(comps):
        n = len(c.token_ids)
        assert lp.mask[i].sum().item() == n
        torch.testing.assert_close(lp.logprobs[i, :n], torch.tensor(c.logprobs), atol=1e-4, rtol=0)
    assert not lp.logprobs.requires_grad  # eval mode: no graph
    policy.train()
    assert policy.logprobs(prompt_ids, [c.token_ids for c in comps]).logprobs.requires_grad


def test_kv_cache_greedy_matches_full_recomputation():
    policy = fresh(seed=3)
    prompts = ["12+34", "5+6"]
    out = policy.generate(prompts, sampling=GREEDY)
    for ids, (c,) in zip(policy.encode_prompts(prompts), out):
        seq = list(ids)
        for _ in range(len(c.token_ids)):
            with torch.no_grad():
                hidden = policy.model(torch.tensor([seq]))
                seq.append(int(policy.model.logits(hidden[0, -1]).argmax()))
        assert seq[len(ids):] == c.token_ids


def test_decode_step_matches_the_full_forward_across_cache_blocks():
    """decode_step (the sampler's fast path: KV cache in blocks with a shared prompt prefix,
    hand-written attention) gives the logits of recomputing each sequence from scratch, and so does
    forward on the same cache: with left padding, across several blocks and a capacity that has to
    grow, before and after dropping and reordering rows (prompts' rows no longer a regular grid)."""
    from rungs.policies.tiny.model import KVCache

    model = fresh(seed=2).model
    prompts = [[1, 20, 21, 22, 23, 24], [1, 30, 31]]  # the second is left-padded by 3
    T, n, block = 6, 3, 4
    tokens = torch.tensor([prompts[0], [0, 0, 0, *prompts[1]]])
    valid = tokens != 0
    positions = (valid.long().cumsum(1) - 1).clamp(min=0)
    mask = ((torch.ones(T, T, dtype=torch.bool).tril() & valid[:, None, :]) | torch.eye(T, dtype=torch.bool))[:, None]
    cache = KVCache(model.cfg, 2, T + 2, torch.float32, torch.device("cpu"), block=block)
    gen = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        last = model.logits(model(tokens, positions, mask, cache)[:, -1])
        rows = torch.arange(2).repeat_interleave(n)
        cache.share_prefix(n)
        cache.hide(~valid[rows])
        seqs, logits, pos = [list(prompts[r]) for r in rows.tolist()], last[rows], positions[rows, -1] + 1
        for step in range(18):
            for seq, lg in zip(seqs, logits):
                torch.testing.assert_close(lg, model.logits(model(torch.tensor([seq]))[0, -1]), atol=2e-5, rtol=0)
            if step == 7:
                keep = torch.tensor([5, 0, 2, 3])  # prompt 1, 0, 0, 1
                cache.select_rows(keep)
                seqs, logits, pos = [seqs[i] for i in keep.tolist()], logits[keep], pos[keep]
            tok = torch.randint(6, 40, (len(seqs),), generator=gen)
            for seq, t in zip(seqs, tok.tolist()):
                seq.append(t)
            if step % 5 == 4:  # the general forward on the same cache agrees
                logits = model.logits(model(tok[:, None], pos[:, None], None, cache))[:, 0]
            else:
                logits = model.decode_step(tok, pos, cache)
            pos = pos + 1
    assert cache.length == T + 18 and cache.capacity >= T + 18


def test_rms_norm_fast_path_is_bitwise_torchs():
    from rungs.policies.tiny.model import rms_norm

    norm = torch.nn.RMSNorm(64, eps=1e-5)
    with torch.no_grad():
        norm.weight.normal_()
    x = torch.randn(16, 3, 64) * 10
    assert torch.equal(rms_norm(x, norm), norm(x))


def test_hostile_prompts_do_not_crash():
    policy = fresh()
    prompts = ["\x00é🙂<eos><bos><pad>", "<answer></answer>", "x" * 10_000, " "]
    out = policy.generate(prompts, n=2, sampling=SamplingParams(temperature=1.0, max_new_tokens=8, seed=0))
    assert all(len(row) == 2 for row in out)
    long_ids = policy.encode_prompts(["x" * 10_000])[0]
    assert len(long_ids) < policy.model.cfg.max_seq_len
    for c in out[2]:  # prompt + completion never exceed max_seq_len
        assert len(long_ids) + len(c.token_ids) <= policy.model.cfg.max_seq_len


def test_nan_logits_raise_instead_of_sampling_noise():
    policy = fresh()
    with torch.no_grad():
        policy.model.embed.weight[7, 0] = float("nan")  # tied head: every step's logits hold a NaN
    with pytest.raises(RuntimeError, match="NaN"):
        policy.generate(["1+2"], n=2, sampling=SamplingParams(temperature=1.0, max_new_tokens=4, seed=0))


def test_fire_diversifies_only_the_first_token():
    policy = fresh(seed=1)
    fire = SamplingParams(temperature=0.0, first_token_temperature=50.0, max_new_tokens=6, seed=0)
    (row,) = policy.generate(["1+2"], n=32, sampling=fire)
    firsts = {c.token_ids[0] for c in row}
    assert len(firsts) >= 8
    # Greedy after the first token: samples that share a first token are identical.
    by_first = defaultdict(set)
    for c in row:
        by_first[c.token_ids[0]].add(tuple(c.token_ids))
    assert all(len(v) == 1 for v in by_first.values())
    (plain,) = policy.generate(["1+2"], n=8, sampling=fire.with_(first_token_temperature=None))
    assert len({tuple(c.token_ids) for c in plain}) == 1
    # first_token_top_k restricts only the first token.
    (top1,) = policy.generate(["1+2"], n=8, sampling=fire.with_(first_token_top_k=1))
    assert len({tuple(c.token_ids) for c in top1}) == 1


# -- training state and persistence -------------------------------------------------------------------
def test_save_load_round_trip(tmp_path, trained):
    trained.save(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} >= {"model.safetensors", "config.json", "tokenizer.json"}
    loaded = load_policy(f"tiny:{tmp_path}")
    prompts = ["3+4", "56+7"]
    a = trained.generate(prompts, n=2, sampling=SamplingParams(temperature=1.0, max_new_tokens=8, seed=9))
    b = loaded.generate(prompts, n=2, sampling=SamplingParams(temperature=1.0, max_new_tokens=8, seed=9))
    assert [[c.token_ids for c in r] for r in a] == [[c.token_ids for c in r] for r in b]
    for k, v in trained.model.state_dict().items():
        assert torch.equal(v, loaded.model.state_dict()[k])
    want = trained.generate(prompts, sampling=GREEDY)[0][0].token_ids
    same_shape = fresh(seed=4)
    params = list(same_shape.parameters())
    same_shape.load(tmp_path)  # in place: optimizers over parameters() stay attached
    assert all(a is b for a, b in zip(same_shape.parameters(), params, strict=True))
    assert same_shape.generate(prompts, sampling=GREEDY)[0][0].token_ids == want
    other_shape = TinyPolicy.new(d_model=32, n_layers=1, n_heads=2)
    other_shape.load(tmp_path)
    assert other_shape.model.cfg == trained.model.cfg
    assert other_shape.generate(prompts, sampling=GREEDY)[0][0].token_ids == want


def test_snapshot_restore_is_bitwise():
    policy = fresh()
    snap = policy.snapshot()
    before = {k: v.clone() for k, v in policy.model.state_dict().items()}
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-2)
    policy.train()
    ids = policy.encode_prompts(["1+2"])
    loss = -policy.logprobs(ids, [policy.tokenizer.encode("<answer>3</answer>")]).logprobs.sum()
    loss.backward()
    opt.step()
    assert any(not torch.equal(v, before[k]) for k, v in policy.model.state_dict().items())
    policy.restore(snap)
    assert all(torch.equal(v, before[k]) for k, v in policy.model.state_dict().items())
    # The snapshot is a copy: later training does not change it.
    opt.step()
    assert all(torch.equal(v, before[k]) for k, v in snap.items())


def test_reference_logprobs_are_frozen():
    policy = fresh()
    with pytest.raises(RuntimeError):
        policy.reference_logprobs([[1, 10]], [[11]])
    policy.set_reference()
    ids = policy.encode_prompts(["1+2"])
    comp = [policy.tokenizer.encode("<answer>3</answer>")]
    ref0 = policy.reference_logprobs(ids, comp)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.05)
    assert torch.equal(policy.reference_logprobs(ids, comp), ref0)
    assert not torch.allclose(policy.logprobs(ids, comp).logprobs, ref0)


def test_sft_steps_lower_the_loss_and_change_parameters(tmp_path):
    task = AddTask()
    policy = fresh()
    problems = generate_problems(task, 64, 1, 1, seed=0)
    prompts, targets = encode_examples(policy, task, problems)
    with torch.no_grad():
        before_loss = sft_loss(policy, prompts, targets).item()
    before = {k: v.clone() for k, v in policy.model.state_dict().items()}
    cfg = SFTConfig(task="toy-add", steps=25, batch_size=16, lr=3e-3, warmup_steps=2, difficulty_min=1,
                    difficulty_max=1, train_problems=64, eval_every=0, eval_problems=8, report_problems=0,
                    out=str(tmp_path), progress=False, max_new_tokens=12, verifier="inline")
    result = train_sft(cfg, task, policy, log=lambda s: None)
    with torch.no_grad():
        after_loss = sft_loss(policy, prompts, targets).item()
    assert after_loss < before_loss - 0.5
    assert all(not torch.equal(v, before[k]) for k, v in policy.model.state_dict().items())
    assert len(result.losses) == 25 and len(result.evals) == 1
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "training.json").is_file()


def test_from_spec_errors_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="no such directory"):
        load_policy("tiny:no-such-checkpoint")
    with pytest.raises(UserError, match="unknown setting"):
        load_policy("tiny:random", d_modle=64)
    assert isinstance(load_policy("tiny:random", **SMALL), TinyPolicy)
    with pytest.raises(UserError, match="no tokenizer"):
        TinyPolicy.from_pretrained(tmp_path)


def test_task_picks_its_shipped_checkpoint_or_warns():
    from rungs.tasks import get_task

    policy = load_policy("tiny", task="integration")
    assert policy.source.endswith("tiny-integration")
    assert load_policy("tiny:integration").source == policy.source
    task = get_task("integration")
    problem = Problem("p", "integrate(3*x**2, x)")
    (c,), = policy.generate([task.prompt(problem, "compact")], sampling=GREEDY.with_(max_new_tokens=40))
    assert task.verify(problem, c.text).correct
    with pytest.warns(UserWarning, match="no shipped tiny checkpoint"):
        fallback = load_policy("tiny", task=AddTask(), **SMALL)
    assert fallback.source == "random"


# Greedy outputs of the shipped tiny-integration checkpoint on the first 20 problems of
# builtin:integration-easy (one left-padded batch), recorded when the checkpoint was retrained on the
# skills distribution (issue 8): a faster sampler must keep them exactly (wrong answers included:
# this pins the computation).
SHIPPED_GREEDY = [
    "<answer>7*exp(x)</answer>",
    "<answer>5*x**4/4</answer>",
    "<answer>-3*x**4/4 + 2*x**3</answer>",
    "<answer>-5*cos(x)**2/2</answer>",
    "<answer>8*x**5/5 + x**2</answer>",
    "<answer>2*x**5/5</answer>",
    "<answer>2*x**6/3</answer>",
    "<answer>-7*sin(x)**4/4</answer>",
    "<answer>2*x**3</answer>",
    "<answer>2*exp(x)</answer>",
    "<answer>7*sin(x)**4/4</answer>",
    "<answer>3*x**5/5 + 7*x**2/2</answer>",
    "<answer>4*x**4/3</answer>",
    "<answer>sin(x)**4/3</answer>",
    "<answer>8*x**5/5 + 7*x**3/3</answer>",
    "<answer>2*x**5/5 - x**5/5</answer>",
    "<answer>8*x**5/5 - 5*x**2/2</answer>",
    "<answer>x**2</answer>",
    "<answer>x**6/6</answer>",
    "<answer>-1)<answer>- + 1/(2*x**2)</answer>",
]


def test_shipped_checkpoint_greedy_outputs_are_unchanged():
    from rungs.data import load_problems
    from rungs.tasks import get_task

    policy = load_policy("tiny:integration")
    task = get_task("integration")
    prompts = [task.prompt(p, "compact") for p in load_problems("builtin:integration-easy", limit=20)]
    out = policy.generate(prompts, sampling=GREEDY.with_(max_new_tokens=128))
    assert [c.text for (c,) in out] == SHIPPED_GREEDY
    for (c,), want in zip(out, SHIPPED_GREEDY):
        assert c.finish_reason == "stop" and c.token_ids == [*policy.tokenizer.encode(want), policy.tokenizer.eos_id]
    # Its log-probs are the ones logprobs() recomputes from scratch.
    lp = policy.logprobs(policy.encode_prompts(prompts), [c.token_ids for (c,) in out])
    for i, (c,) in enumerate(out):
        torch.testing.assert_close(lp.logprobs[i, :len(c.token_ids)], torch.tensor(c.logprobs), atol=1e-4, rtol=0)


def test_a_shipped_checkpoint_resolves_by_every_name_the_cli_takes(tmp_path):
    """`--init tiny:countdown-long` (the spec `--base` takes) names the same directory as `countdown-long`."""
    from rungs.errors import UserError
    from rungs.policies.tiny.policy import resolve_checkpoint, shipped_checkpoints

    name, directory = next(iter(shipped_checkpoints().items()))
    for spelling in (name, f"tiny-{name}", f"tiny:{name}"):
        assert resolve_checkpoint(spelling) == directory
    assert resolve_checkpoint(str(tmp_path)) == tmp_path
    with pytest.raises(UserError, match="not a shipped checkpoint"):
        resolve_checkpoint("tiny:no-such-checkpoint")


def test_a_prompt_longer_than_the_model_reads_is_said_once(recwarn):
    """The tiny model keeps only a long prompt's end: a problem of 300 characters scored 0 silently."""
    from rungs.policies import load_policy

    policy = load_policy("tiny:integration")
    policy.encode_prompts(["integrate(x, x)"])
    assert not [w for w in recwarn if "longer than" in str(w.message)]
    policy.encode_prompts(["x" * 300, "y" * 10])
    policy.encode_prompts(["x" * 400])
    said = [str(w.message) for w in recwarn if "longer than" in str(w.message)]
    assert len(said) == 1 and "a prompt of 300 characters is longer than the 254 the model reads" in said[0]


# -- a large n (s35 C1) ---------------------------------------------------------------------------------
def test_row_chunks_cover_every_sample_of_every_prompt_once():
    from rungs.policies.tiny.policy import row_chunks

    for prompts, n, rows in [(3, 4, 100), (5, 2, 4), (2, 7, 3), (1, 10, 1), (4, 3, 3)]:
        chunks = list(row_chunks(prompts, n, rows))
        assert all((stop - first) * count <= rows for first, stop, count in chunks)
        made = [0] * prompts
        for first, stop, count in chunks:
            for p in range(first, stop):
                made[p] += count
        assert made == [n] * prompts
    assert list(row_chunks(3, 4, 12)) == [(0, 3, 4)]  # one call when everything fits: the stream is unchanged


def test_a_batch_larger_than_the_cache_budget_is_sampled_in_chunks_of_rows(trained, monkeypatch):
    """The KV cache of one call is bounded whatever n is (`rungs generate --n 10000000` tried to
    allocate 7.8 TB at once). Greedy samples are the same chunked or not; sampled ones draw their
    random numbers in another order, so only their shape, validity and reproducibility are checked."""
    import rungs.policies.tiny.policy as tiny

    prompts = ["3+4", "12+5", "1+1"]
    sampled = SamplingParams(temperature=1.0, max_new_tokens=6, seed=3)
    whole_greedy = trained.generate(prompts, n=4, sampling=GREEDY)
    per_row = 2 * trained.model.cfg.n_layers * trained.model.cfg.d_model * 4 * (max(len(p) for p in prompts) + 1 + 12)
    monkeypatch.setattr(tiny, "GENERATE_CACHE_BYTES", 3 * per_row)  # three rows a call
    assert trained.chunk_rows(trained.encode_prompts(prompts), 12) == 3
    calls = []
    real = tiny.generate_ids
    monkeypatch.setattr(tiny, "generate_ids", lambda model, ids, n, *a, **k: calls.append(len(ids) * n) or real(model, ids, n, *a, **k))
    chunked_greedy = trained.generate(prompts, n=4, sampling=GREEDY)
    assert len(calls) > 1 and max(calls) <= 3 and sum(calls) == 12
    assert [[c.token_ids for c in row] for row in chunked_greedy] == [[c.token_ids for c in row] for row in whole_greedy]
    first, again = trained.generate(prompts, n=4, sampling=sampled), trained.generate(prompts, n=4, sampling=sampled)
    assert [len(row) for row in first] == [4, 4, 4]
    assert [[c.token_ids for c in row] for row in first] == [[c.token_ids for c in row] for row in again]
    for c in (c for row in first for c in row):
        assert 1 <= len(c.token_ids) == len(c.logprobs) <= 6 and c.finish_reason in ("stop", "length")


def test_completions_that_cannot_fit_in_memory_are_refused_naming_the_count(monkeypatch):
    import rungs.policies.base as base
    import rungs.policies.tiny.policy as tiny

    policy = fresh()
    monkeypatch.setattr(base, "physical_memory_bytes", lambda: 10 * 2**20)  # 10 MiB
    monkeypatch.setattr(tiny, "generate_ids", lambda *a, **k: pytest.fail("sampled before refusing"))
    with pytest.raises(UserError, match=r"^tiny policy: 100000 samples of up to 10 tokens would need about 0.1 GiB .* 0.0 GiB; "
                                        r"expected at most about 12945 samples \(a smaller --n\)$"):
        policy.generate(["1+2"], n=100_000, sampling=SamplingParams(max_new_tokens=10))
    with pytest.raises(UserError, match=r"^tiny policy: 100000 samples of up to 10 tokens"):  # the same, unsampled
        policy.check_generate(["1+2"], n=100_000, sampling=SamplingParams(max_new_tokens=10))
    policy.check_generate(["1+2"], n=1_000, sampling=SamplingParams(max_new_tokens=10))  # fits: no refusal


@pytest.mark.parametrize(("argv", "count"), [
    (["generate", "--task", "integration", "--problem", "integrate(x, x)", "--n", "10000000"], 10_000_000),
    (["eval", "--n", "1,1000000", "--seeds", "1", "--limit", "1", "--no-progress", "--no-plot"], 1_000_000),
])
def test_a_huge_n_is_one_line_not_a_torch_allocation_traceback(argv, count, tmp_path, capsys, monkeypatch):
    """The review's commands, on a machine of 4 GiB (so that the outcome does not depend on this one's).
    The eval's greedy pass would fit: it is refused before that pass samples, so that no run
    directory is left behind whose resume meets the same refusal."""
    import rungs.policies.base as base
    from rungs.cli import main

    monkeypatch.setattr(base, "physical_memory_bytes", lambda: 4 * 2**30)
    out = ["--out", str(tmp_path / "run")] if argv[0] == "eval" else []
    assert main([*argv, *out]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"tiny policy: {count} samples of up to" in err and "a smaller --n" in err, err
    assert not (tmp_path / "run").exists()
