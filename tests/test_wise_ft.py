"""WiSE-FT (rungs/train/wise_ft.py, `rungs wise-ft`): (1 - alpha) * base + alpha * tuned, per layout."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from rungs.errors import UserError
from rungs.train.wise_ft import RECORD, check_alpha, interpolate, wise_ft


def _checkpoint(directory, tensors, extra=None):
    directory.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(directory / "model.safetensors"))
    (directory / "config.json").write_text(json.dumps(extra or {"d": 1}))
    return directory


@pytest.fixture
def pair(tmp_path):
    base = {"w": torch.zeros(2, 3), "b": torch.full((3,), 2.0), "h": torch.ones(4, dtype=torch.bfloat16),
            "steps": torch.tensor([7], dtype=torch.int64)}
    tuned = {"w": torch.ones(2, 3), "b": torch.full((3,), 4.0), "h": torch.full((4,), 3.0, dtype=torch.bfloat16),
             "steps": torch.tensor([9], dtype=torch.int64)}
    return _checkpoint(tmp_path / "base", base), _checkpoint(tmp_path / "tuned", tuned, {"tuned": True})


@pytest.mark.parametrize("alpha, w, b, h", [(0.0, 0.0, 2.0, 1.0), (1.0, 1.0, 4.0, 3.0), (0.25, 0.25, 2.5, 1.5),
                                            (1.5, 1.5, 5.0, 4.0)])
def test_whole_checkpoints_interpolate_every_floating_tensor(pair, tmp_path, alpha, w, b, h):
    out = wise_ft(*pair, alpha, tmp_path / "out")
    merged = load_file(str(out / "model.safetensors"))
    assert torch.equal(merged["w"], torch.full((2, 3), w))
    assert torch.equal(merged["b"], torch.full((3,), b))
    assert merged["h"].dtype == torch.bfloat16 and torch.equal(merged["h"].float(), torch.full((4,), h))
    assert torch.equal(merged["steps"], torch.tensor([9]))  # an integer buffer comes from the tuned checkpoint
    assert json.loads((out / "config.json").read_text()) == {"tuned": True}  # the tuned checkpoint's other files
    record = json.loads((out / RECORD).read_text())
    assert record["alpha"] == alpha and record["tensors"] == 4 and record["tuned"] == str(pair[1].resolve())


def test_interpolate_is_torch_lerp_in_float32():
    base, tuned = torch.randn(5, dtype=torch.float16), torch.randn(5, dtype=torch.float16)
    mixed = interpolate(base, tuned, 0.3)
    assert mixed.dtype == torch.float16
    assert torch.equal(mixed, torch.lerp(base.float(), tuned.float(), 0.3).half())


def test_a_tiny_checkpoint_merge_loads_as_a_policy_and_holds_the_interpolated_weights(tmp_path):
    from rungs.policies import load_policy

    base = load_policy("tiny:countdown", task="countdown", seed=0)
    tuned = load_policy("tiny:countdown", task="countdown", seed=0)
    with torch.no_grad():
        for p in tuned.model.parameters():
            p.add_(0.1)
    base.save(tmp_path / "base")
    tuned.save(tmp_path / "tuned")
    merged = load_policy(f"tiny:{wise_ft(tmp_path / 'base', tmp_path / 'tuned', 0.5, tmp_path / 'm')}", task="countdown")
    for name, value in merged.model.state_dict().items():
        assert torch.allclose(value, base.model.state_dict()[name] + 0.05, atol=1e-6), name


def test_sharded_transformers_checkpoints_keep_their_layout_and_load(tmp_path):
    from _hf_tiny import make_tiny_hf
    from transformers import AutoModelForCausalLM

    base_dir = make_tiny_hf(tmp_path / "base", seed=0)
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(-1.0)
    model.save_pretrained(tmp_path / "tuned", max_shard_size="40KB")
    shards = sorted(p.name for p in (tmp_path / "tuned").glob("model-*.safetensors"))
    assert len(shards) > 1 and (tmp_path / "tuned" / "model.safetensors.index.json").is_file()

    out = wise_ft(base_dir, tmp_path / "tuned", 0.5, tmp_path / "out")
    assert sorted(p.name for p in out.glob("model-*.safetensors")) == shards
    merged = AutoModelForCausalLM.from_pretrained(out)
    for name, value in merged.state_dict().items():
        assert torch.allclose(value, torch.zeros_like(value), atol=1e-6), name  # halfway between w and -w


def test_a_lora_adapter_is_merged_by_scaling_lora_b_which_is_the_interpolation(tmp_path):
    """Merged into its base model, the scaled adapter gives base + alpha * (tuned - base) on every weight."""
    from _hf_tiny import make_tiny_hf
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    base_dir = make_tiny_hf(tmp_path / "base", seed=0)
    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir),
                                LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_()  # a trained adapter: B is no longer zero
    peft_model.save_pretrained(tmp_path / "adapter")

    out = wise_ft(base_dir, tmp_path / "adapter", 0.25, tmp_path / "out")
    assert json.loads((out / RECORD).read_text())["layout"] == "lora_B scaled"

    def merged_weights(adapter):
        model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), adapter)
        return model.merge_and_unload().state_dict()

    base = AutoModelForCausalLM.from_pretrained(base_dir).state_dict()
    full, quarter = merged_weights(tmp_path / "adapter"), merged_weights(out)
    moved = 0
    for name, value in quarter.items():
        assert torch.allclose(value, base[name] + 0.25 * (full[name] - base[name]), atol=1e-5), name
        moved += not torch.equal(full[name], base[name])
    assert moved == 4  # q_proj and v_proj of both layers


@pytest.mark.parametrize("config, tensors, message", [
    ({"use_dora": True}, {"m.lora_B.weight": 1}, "DoRA"),
    ({"bias": "lora_only"}, {"m.lora_B.weight": 1}, "bias='lora_only' is not linear"),
    ({"init_lora_weights": "pissa"}, {"m.lora_B.weight": 1}, "init_lora_weights='pissa' is not linear"),
    ({"init_lora_weights": "olora"}, {"m.lora_B.weight": 1}, "init_lora_weights='olora'"),
    ({"modules_to_save": ["lm_head"]}, {"m.lora_B.weight": 1}, "modules_to_save"),
    ({}, {"m.lora_A.weight": 1}, "no lora_B tensor"),
    ({}, {"m.lora_B.weight": 1, "m.base_layer.bias": 1}, "'m.base_layer.bias' is not a LoRA factor"),
])
def test_adapters_that_are_not_linear_in_alpha_are_refused(tmp_path, config, tensors, message):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    save_file({k: torch.ones(2, 2) for k in tensors}, str(adapter / "adapter_model.safetensors"))
    with pytest.raises(UserError, match=message):
        wise_ft(None, adapter, 0.5, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []  # the staging directory went too


def test_an_adapters_base_if_given_must_be_the_one_it_records(tmp_path):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "smollm2"}))
    save_file({"m.lora_A.weight": torch.ones(2, 2), "m.lora_B.weight": torch.ones(2, 2)},
              str(adapter / "adapter_model.safetensors"))
    with pytest.raises(UserError, match="--base tiny:countdown is not the base model .* records \\('smollm2'\\)"):
        wise_ft("tiny:countdown", adapter, 0.5, tmp_path / "out")
    out = wise_ft("hf:smollm2", adapter, 0.5, tmp_path / "out")
    assert torch.equal(load_file(str(out / "adapter_model.safetensors"))["m.lora_B.weight"], torch.full((2, 2), 0.5))
    for text in ("{bad", "[]"):
        (adapter / "adapter_config.json").write_text(text)
        with pytest.raises(UserError, match="adapter_config.json: not (JSON|a JSON object)"):
            wise_ft(None, adapter, 0.5, tmp_path / "out2")


def test_checkpoints_of_different_models_are_one_line_errors(pair, tmp_path):
    base, tuned = pair
    _checkpoint(tmp_path / "other", {"w": torch.zeros(3, 2), "b": torch.zeros(3), "h": torch.zeros(4),
                                     "steps": torch.tensor([1])})
    with pytest.raises(UserError, match=r"tensor 'w': shape \(2, 3\) .* \(3, 2\) in the base") as raised:
        wise_ft(tmp_path / "other", tuned, 0.5, tmp_path / "out")
    assert "\n" not in str(raised.value)
    _checkpoint(tmp_path / "fewer", {"w": torch.zeros(2, 3)})
    with pytest.raises(UserError, match="tensor 'b' is not in the base"):
        wise_ft(tmp_path / "fewer", tuned, 0.5, tmp_path / "out")
    with pytest.raises(UserError, match="tensor 'b' is not in the tuned"):
        wise_ft(base, tmp_path / "fewer", 0.5, tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no model.safetensors or model.safetensors.index.json"):
        wise_ft(base, tmp_path / "empty", 0.5, tmp_path / "out")
    with pytest.raises(UserError, match="--tuned .*missing: no such directory"):
        wise_ft(base, tmp_path / "missing", 0.5, tmp_path / "out")


def test_out_must_not_be_an_input_or_an_unrelated_directory_and_an_earlier_merge_is_replaced(pair, tmp_path):
    base, tuned = pair
    with pytest.raises(UserError, match="is or holds an input"):
        wise_ft(base, tuned, 0.5, tuned)
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="is not an earlier wise-ft merge"):
        wise_ft(base, tuned, 0.5, keep)
    assert (keep / "notes.txt").read_text() == "mine"
    wise_ft(base, tuned, 0.5, tmp_path / "m")
    wise_ft(base, tuned, 1.0, tmp_path / "m")
    assert torch.equal(load_file(str(tmp_path / "m" / "model.safetensors"))["w"], torch.ones(2, 3))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging or old copy left
    assert (tmp_path / "m").stat().st_mode & 0o755 == 0o755


def test_a_folder_holding_a_wise_ft_json_of_another_kind_or_an_input_is_never_replaced(pair, tmp_path, monkeypatch):
    """bench/wise_ft.py writes RUN/wise_ft.json into a bench run; an earlier merge holding an input;
    the working directory: none of them is an earlier merge to replace."""
    base, tuned = pair
    run = tmp_path / "run"
    (run / "countdown").mkdir(parents=True)
    (run / "learning.json").write_text("{}")
    (run / RECORD).write_text(json.dumps({"suite": "countdown", "rows": []}))
    with pytest.raises(UserError, match="not an earlier wise-ft merge"):
        wise_ft(base, tuned, 0.5, run)
    assert (run / "learning.json").is_file() and (run / "countdown").is_dir()

    outer = wise_ft(base, tuned, 0.5, tmp_path / "outer")
    inner = _checkpoint(outer / "inner", load_file(str(tuned / "model.safetensors")))
    with pytest.raises(UserError, match="is or holds an input"):
        wise_ft(base, inner, 0.5, outer)
    assert (inner / "model.safetensors").is_file()

    monkeypatch.chdir(outer)
    for out in (".", tmp_path, ""):
        with pytest.raises(UserError, match="is or holds (the working directory|an input)|--out is empty"):
            wise_ft(base, tuned, 0.5, out)
    assert (outer / RECORD).is_file()
    (tmp_path / "link").symlink_to(outer)
    with pytest.raises(UserError, match="is a symlink"):
        wise_ft(base, tuned, 0.5, tmp_path / "link")


@pytest.mark.parametrize("weight_map, message", [
    ({"w": "/tmp/victim/model.safetensors"}, "is not a .safetensors file name inside"),
    ({"w": "../victim.safetensors"}, "is not a .safetensors file name inside"),
    ({"w": "sub/model.safetensors"}, "is not a .safetensors file name inside"),
    ([], "weight_map is not a non-empty mapping"),
    ({"w": 1}, "weight_map is not a non-empty mapping"),
    ({}, "weight_map is not a non-empty mapping"),
])
def test_shard_names_in_an_index_stay_inside_the_checkpoint(pair, tmp_path, weight_map, message):
    base, tuned = pair
    (tuned / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    with pytest.raises(UserError, match=message) as raised:
        wise_ft(base, tuned, 0.5, tmp_path / "out")
    assert "\n" not in str(raised.value) and not (tmp_path / "out").exists()


def test_only_config_and_tokenizer_files_are_copied(pair, tmp_path):
    base, tuned = pair
    for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json", "special_tokens_map.json",
                 "training.json", "events.jsonl", "optimizer.pt", "pytorch_model.bin", "trainer_state.json"):
        (tuned / name).write_text("{}")
    out = wise_ft(base, tuned, 0.5, tmp_path / "out")
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "generation_config.json", "model.safetensors",
                                                     "special_tokens_map.json", "tokenizer.json",
                                                     "tokenizer_config.json", RECORD]


def test_an_alpha_that_overflows_the_dtype_is_refused(pair, tmp_path):
    base, tuned = pair
    with pytest.raises(UserError, match="tensor 'h' overflows its dtype at alpha=1e\\+38|between -100 and 100"):
        wise_ft(base, tuned, 1e38, tmp_path / "out")
    (tuned / "model.safetensors").unlink()
    save_file({"w": torch.zeros(2, 3), "b": torch.full((3,), 2.0), "h": torch.full((4,), 6e4, dtype=torch.float16),
               "steps": torch.tensor([9])}, str(tuned / "model.safetensors"))
    with pytest.raises(UserError, match="tensor 'h' overflows its dtype at alpha=100"):
        wise_ft(base, tuned, 100, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("alpha", [float("nan"), float("inf"), "0.5", True, None, 101, -1e39])
def test_alpha_must_be_a_bounded_number(alpha):
    with pytest.raises(UserError, match="expected a number between -100 and 100"):
        check_alpha(alpha)


def test_the_command_merges_with_a_shipped_base_and_names_bad_input(tmp_path, capsys):
    from rungs.cli import main
    from rungs.policies import load_policy

    load_policy("tiny:countdown", task="countdown", seed=0).save(tmp_path / "tuned")
    assert main(["wise-ft", "--base", "tiny:countdown", "--tuned", str(tmp_path / "tuned"), "--alpha", "0.3",
                 "--out", str(tmp_path / "m")]) == 0
    assert f"alpha 0.3 of {tmp_path / 'tuned'} over tiny:countdown: {tmp_path / 'm'}" in capsys.readouterr().out
    assert load_policy(f"tiny:{tmp_path / 'm'}", task="countdown") is not None

    assert main(["wise-ft", "--base", "tiny:nope", "--tuned", str(tmp_path / "tuned"), "--alpha", "0.3",
                 "--out", str(tmp_path / "m2")]) == 2
    err = capsys.readouterr().err
    assert "tiny checkpoint 'tiny:nope'" in err and err.count("\n") == 1


def test_the_command_checks_the_base_against_the_tuned_runs_record(tmp_path, capsys):
    """A ladder run of integration from `tiny` records its start in config.yaml: a countdown base is
    refused (the shipped checkpoints share one shape, so nothing else would notice), `--base tiny`
    resolves by the recorded task, and --ignore-recorded-base overrides a wrong record."""
    import yaml

    from rungs.cli import main
    from rungs.policies import load_policy

    run = tmp_path / "run"
    load_policy("tiny:integration", task="integration", seed=0).save(run / "final")
    (run / "config.yaml").write_text(yaml.safe_dump({"ladder": {"task": "integration", "policy": "tiny"},
                                                     "grpo": {"learning_rate": 1e-4}}))
    args = ["wise-ft", "--tuned", str(run / "final"), "--alpha", "0.5"]
    assert main([*args, "--base", "tiny:countdown", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert f"{run / 'config.yaml'} says {run / 'final'} was trained from tiny" in err and err.count("\n") == 1
    assert not (tmp_path / "a").exists()
    assert main([*args, "--base", "tiny", "--out", str(tmp_path / "b")]) == 0
    assert json.loads((tmp_path / "b" / RECORD).read_text())["base"].endswith("tiny-integration")
    assert main([*args, "--base", "tiny:countdown", "--ignore-recorded-base", "--out", str(tmp_path / "c")]) == 0
    capsys.readouterr()
    assert main(["wise-ft", "--tuned", str(tmp_path / "b"), "--alpha", "0.5", "--base", "tiny",
                 "--out", str(tmp_path / "d")]) == 2
    assert "--base tiny: which task's checkpoint is not known here" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["missing", "run"])
def test_a_tuned_that_is_no_checkpoint_is_named_before_base_tiny_is_resolved_from_it(tmp_path, capsys, where):
    """`--base tiny` takes its task from the tuned run's record: with no checkpoint at --tuned (a
    path that is not there, or the run's directory instead of its final/) the error blamed --base (s35 M4)."""
    from rungs.cli import main

    (tmp_path / "run" / "final").mkdir(parents=True)
    tuned = tmp_path / where
    assert main(["wise-ft", "--base", "tiny", "--tuned", str(tuned), "--alpha", "0.25", "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rungs wise-ft: error: --tuned {tuned}: ") and err.count("\n") == 1, err
    assert ("no such directory" if where == "missing" else f"keeps its final weights in {tuned / 'final'}") in err


def test_an_hf_runs_whole_weight_checkpoint_is_checked_against_its_recorded_base(tmp_path, capsys):
    """The record was read only for tiny runs: a full fine-tune of one hf model merged over another
    of the same shape without a word."""
    import yaml
    from _hf_tiny import make_tiny_hf

    from rungs.cli import main

    base, other = make_tiny_hf(tmp_path / "base", seed=0), make_tiny_hf(tmp_path / "other", seed=1)
    run = tmp_path / "run"
    import shutil

    shutil.copytree(base, run / "final")
    (run / "config.yaml").write_text(yaml.safe_dump({"train": {"task": "integration", "policy": f"hf:{base}"}}))
    args = ["wise-ft", "--tuned", str(run / "final"), "--alpha", "0.5"]
    assert main([*args, "--base", f"hf:{other}", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert f"says {run / 'final'} was trained from hf:{base}" in err and not (tmp_path / "a").exists()
    assert main([*args, "--base", f"hf:{base}", "--out", str(tmp_path / "b")]) == 0
    # `--policy hf --model PATH` records the model apart from the policy
    (run / "config.yaml").write_text(yaml.safe_dump({"train": {"task": "integration", "policy": "hf", "model": str(base)}}))
    assert main([*args, "--base", f"hf:{other}", "--out", str(tmp_path / "c")]) == 2
    assert f"was trained from hf:{base}" in capsys.readouterr().err


def _dead_pid() -> int:
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_next_merge_tidies_what_a_killed_merge_left_and_nothing_else(pair, tmp_path):
    """A SIGKILL between the steps of a merge leaves folders named with the writer's pid and holding
    its owner record: its staging folder, and (mid-replacement) the earlier merge moved aside with
    `--out` gone. Folders that merely look like them are never touched."""
    from rungs.train.wise_ft import OWNER, _owner_record, _recover_leftovers

    base, tuned = pair
    out = tmp_path / "m"
    wise_ft(base, tuned, 0.5, out)
    dead = _dead_pid()

    def leftover(name: str, pid: int = dead, record: bool = True) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        if record:
            (folder / OWNER).write_text(json.dumps({**_owner_record(out), "pid": pid}))
        return folder

    staging = leftover(f".m.wise-ft.{dead}.abc123de")
    (staging / "model.safetensors").write_bytes(b"half")
    aside = leftover(f".m.old.{dead}.def456gh")
    out.rename(aside / "merge")  # killed after moving the earlier merge aside
    keep = [leftover(f".m.wise-ft.{os.getpid()}.ghi789jk", pid=os.getpid()),  # a merge still running
            leftover(f".m.old.{dead}.backup-before-upgrade"),                  # a user's folder: not mkdtemp's name
            leftover(f".m.wise-ft.{dead}.nomarker", record=False),             # no owner record
            leftover(f".m.wise-ft.{dead}.otherout"),                           # another --out's record
            leftover(f".m.old.{'9' * 30}.hugepid0")]                            # not a possible pid
    (keep[3] / OWNER).write_text(json.dumps({**_owner_record(tmp_path / "x"), "pid": dead}))
    user_dir = leftover(f".m.wise-ft.{dead}.userdir0")
    (user_dir / "notes").mkdir()  # holds a folder: not a staging folder
    keep.append(user_dir)
    _recover_leftovers(out)
    assert json.loads((out / RECORD).read_text())["alpha"] == 0.5  # the earlier merge is back
    assert not (out / OWNER).exists()
    assert not staging.exists() and not aside.exists() and all(k.is_dir() for k in keep)
    staging = leftover(f".m.wise-ft.{dead}.abc123de")
    wise_ft(base, tuned, 1.0, out)  # and the next merge clears a dead writer's staging itself
    assert not staging.exists() and all(k.is_dir() for k in keep)
    assert OWNER not in {p.name for p in out.iterdir()}  # the merge carries no owner record
    assert torch.equal(load_file(str(out / "model.safetensors"))["w"], torch.ones(2, 3))
