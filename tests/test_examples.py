"""The veRL example writes parquet that rungs' reward functions score correctly, loaded as veRL loads them."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from rungs.data import load_problems

pd = pytest.importorskip("pandas")


def load_like_verl(path):
    """verl.utils.import_utils.load_extern_object: import a module from a file path, take a name."""
    spec = importlib.util.spec_from_file_location("custom_module", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["custom_module"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("task,problems", [("integration", "builtin:integration-hard"), ("countdown", "builtin:countdown-easy")])
def test_verl_example_round_trip(tmp_path, repo_root, task, problems):
    out = tmp_path / f"{task}.parquet"
    subprocess.run([sys.executable, str(repo_root / "examples" / "verl" / "make_parquet.py"), "--task", task,
                    "--problems", problems, "--out", str(out)], check=True, capture_output=True)
    df = pd.read_parquet(out)  # numpy arrays inside, as veRL's datasets hand them over
    reward = load_like_verl(repo_root / "examples" / "verl" / "reward.py")
    golds = load_problems(problems)
    assert len(df) == len(golds) and df["data_source"][0] == task
    rows = df.head(3)
    truths = [rm["ground_truth"] for rm in rows["reward_model"]]
    right = [f"<answer>{p.answer}</answer>" for p in golds[:3]]
    if task == "countdown":
        assert isinstance(truths[0]["numbers"], np.ndarray)
    scores = reward.compute_score_batch(data_sources=rows["data_source"].to_numpy(), solution_strs=right,
                                        ground_truths=truths, extra_infos=rows["extra_info"].to_numpy())
    assert scores == [1.0, 1.0, 1.0]
    assert reward.compute_score(data_source=task, solution_str="<answer>x**2+1000</answer>", ground_truth=truths[0],
                                extra_info=rows["extra_info"][0]) == 0.0


def test_make_parquet_says_what_is_wrong_in_one_line(tmp_path, repo_root):
    script = str(repo_root / "examples" / "verl" / "make_parquet.py")
    bad = subprocess.run([sys.executable, script, "--task", "nope", "--out", str(tmp_path / "x.parquet")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and bad.stderr.strip() == \
        "make_parquet: error: unknown task 'nope': expected one of arc, countdown, integration, math"
    (tmp_path / "q.jsonl").write_text('{"problem": "What is 1+1?"}\n{"problem": "What is 2+3?"}\n')
    done = subprocess.run([sys.executable, script, "--task", "math", "--problems", str(tmp_path / "q.jsonl"),
                           "--out", str(tmp_path / "q.parquet")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "warning: 2 of 2 rows have no answer" in done.stdout
    quiet = subprocess.run([sys.executable, script, "--task", "math", "--problems", str(tmp_path / "q.jsonl"),
                            "--no-labels", "--out", str(tmp_path / "q2.parquet")], capture_output=True, text=True,
                           timeout=120)
    assert quiet.returncode == 0 and "warning" not in quiet.stdout


# veRL 0.9's reward-loop managers (verl/experimental/reward_loop/reward_manager/registry.py, 0.9.0):
# a `reward.reward_manager.name` outside these stops the job at start ("Unknown reward manager").
VERL_09_REWARD_MANAGERS = {"naive", "dapo", "gdpo", "rate_limited", "remote"}


def test_the_verl_09_script_names_a_manager_and_function_that_exist(repo_root):
    import re

    script = (repo_root / "examples" / "verl" / "run_grpo.sh").read_text()
    managers = re.findall(r"reward\.reward_manager\.name=(\S+)", script)
    assert set(managers) <= VERL_09_REWARD_MANAGERS, managers
    (name,) = re.findall(r"reward\.custom_reward_function\.name=(\S+)", script)
    reward = load_like_verl(repo_root / "examples" / "verl" / "reward.py")
    score = getattr(reward, name)(data_source="countdown", solution_str="<answer>2+3*4</answer>",
                                  ground_truth={"target": 14, "numbers": [2, 3, 4]}, extra_info={"index": 0})
    assert score == 1.0  # the per-response call veRL 0.9's naive manager makes


def test_the_ttrl_script_uses_the_legacy_batch_keys(repo_root):
    script = (repo_root / "examples" / "verl" / "run_ttrl.sh").read_text()
    assert "reward_model.reward_manager=batch" in script and "reward.reward_manager.name=batch" not in script
    assert "custom_reward_function.name=compute_score_vote_batch" in script
