"""WiSE-FT (rungs/train/wise_ft.py, `rungs wise-ft`): (1 - alpha) * base + alpha * tuned, per layout."""

from __future__ import annotations

import json

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


def test_adapters_that_are_not_linear_in_alpha_are_refused(tmp_path):
    adapter = tmp_path / "dora"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"use_dora": True}))
    save_file({"m.lora_B.weight": torch.ones(2, 2)}, str(adapter / "adapter_model.safetensors"))
    with pytest.raises(UserError, match="DoRA"):
        wise_ft(tmp_path, adapter, 0.5, tmp_path / "out")
    (adapter / "adapter_config.json").write_text(json.dumps({}))
    save_file({"m.lora_A.weight": torch.ones(2, 2)}, str(adapter / "adapter_model.safetensors"))
    with pytest.raises(UserError, match="no lora_B tensor"):
        wise_ft(tmp_path, adapter, 0.5, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []  # the staging directory went too


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
    with pytest.raises(UserError, match="is one of the inputs"):
        wise_ft(base, tuned, 0.5, tuned)
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="is not an earlier wise-ft output"):
        wise_ft(base, tuned, 0.5, keep)
    assert (keep / "notes.txt").read_text() == "mine"
    wise_ft(base, tuned, 0.5, tmp_path / "m")
    wise_ft(base, tuned, 1.0, tmp_path / "m")
    assert torch.equal(load_file(str(tmp_path / "m" / "model.safetensors"))["w"], torch.ones(2, 3))


@pytest.mark.parametrize("alpha", [float("nan"), float("inf"), "0.5", True, None])
def test_alpha_must_be_a_finite_number(alpha):
    with pytest.raises(UserError, match="expected a finite number"):
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
