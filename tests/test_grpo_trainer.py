"""The GRPO trainer: it learns a trivially learnable task, resumes exactly after kill -9, and a
hung verifier costs only its own rollout.

The policy here is a bigram model over four characters (a [V, V] logit table), small enough that
a dozen steps take well under a second, but trainable through the same `Policy` interface as the
real models. `run_toy` is also the entry point of the subprocesses that are killed mid-run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from rungs.policies.base import LogProbs, Policy, SamplingParams
from rungs.runs import RunDir
from rungs.tasks.base import Task
from rungs.train.grpo import EpochSampler, GRPOTrainer, format_reward, lr_factor
from rungs.train.grpo_config import GRPOConfig
from rungs.types import Completion, Problem, Status, Verdict
from rungs.verify.pool import VerifierPool

TESTS_DIR = Path(__file__).resolve().parent
BOS, EOS = 0, 1
CHARS = "abc"  # token id = 2 + index
V = 2 + len(CHARS)


class BigramPolicy(Policy):
    """p(next | previous token) from a [V, V] table; the prompt only contributes <bos>."""

    name = "bigram"
    trainable = True
    prompt_style = "compact"

    def __init__(self, seed: int = 0) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.table = torch.nn.Parameter(0.1 * torch.randn(V, V, generator=gen))  # [V, V]
        self._reference: torch.Tensor | None = None

    def encode_prompts(self, prompts):
        return [[BOS] for _ in prompts]

    def generate(self, prompts, n=1, sampling=None):
        sampling = sampling or SamplingParams()
        gen = torch.Generator().manual_seed(sampling.seed if sampling.seed is not None else 0)
        out = []
        with torch.no_grad():
            for _ in prompts:
                group = []
                for _ in range(n):
                    prev, ids, lps, finish = BOS, [], [], "length"
                    for _ in range(sampling.max_new_tokens):
                        logits = self.table[prev]  # [V]
                        if sampling.temperature == 0:
                            tok = int(logits.argmax())
                        else:
                            tok = int(torch.multinomial((logits / sampling.temperature).softmax(-1), 1, generator=gen))
                        ids.append(tok)
                        lps.append(float(torch.log_softmax(logits, -1)[tok]))
                        prev = tok
                        if tok == EOS:
                            finish = "stop"
                            break
                    text = "".join(CHARS[t - 2] for t in ids if t >= 2)
                    group.append(Completion(text, ids, lps, finish))
                out.append(group)
        return out

    def _score(self, table, prompt_ids, completion_ids, with_entropy):
        B = len(completion_ids)
        T = max([len(c) for c in completion_ids] + [1])
        prev = torch.zeros(B, T, dtype=torch.long)
        target = torch.zeros(B, T, dtype=torch.long)
        mask = torch.zeros(B, T, dtype=torch.bool)
        for i, (p, c) in enumerate(zip(prompt_ids, completion_ids)):
            seq = [p[-1], *c]
            prev[i, : len(c)] = torch.tensor(seq[:-1], dtype=torch.long)
            target[i, : len(c)] = torch.tensor(list(c), dtype=torch.long)
            mask[i, : len(c)] = True
        logp_all = torch.log_softmax(table[prev], -1)  # [B, T, V]
        logp = logp_all.gather(-1, target[..., None]).squeeze(-1).masked_fill(~mask, 0.0)  # [B, T]
        ent = -(logp_all.exp() * logp_all).sum(-1).detach() if with_entropy else None
        return LogProbs(logp, mask, ent)

    def logprobs(self, prompt_ids, completion_ids, *, with_entropy=False):
        return self._score(self.table, prompt_ids, completion_ids, with_entropy)

    def set_reference(self):
        self._reference = self.table.detach().clone()

    def reference_logprobs(self, prompt_ids, completion_ids):
        return self._score(self._reference, prompt_ids, completion_ids, False).logprobs

    def parameters(self):
        return [self.table]

    def snapshot(self):
        return self.table.detach().clone()

    def restore(self, snapshot):
        with torch.no_grad():
            self.table.copy_(snapshot)

    def save(self, directory):
        Path(directory).mkdir(parents=True, exist_ok=True)
        torch.save(self.table.detach().clone(), Path(directory) / "table.pt")
        if os.environ.get("BIGRAM_KILL_IN_SAVE") and (Path(directory).parent.name.find("step-6") >= 0):
            os.kill(os.getpid(), signal.SIGKILL)  # killed halfway through writing checkpoint 6

    def load(self, directory):
        # Like TinyPolicy.load: a new parameter object (the trainer must rebuild its optimizer).
        self.table = torch.nn.Parameter(torch.load(Path(directory) / "table.pt"))
        self._reference = None


class FirstLetterTask(Task):
    """Reward 1 when the completion starts with the problem's answer letter."""

    name = "first-letter"

    def prompt(self, problem, style="instruct"):
        return problem.text

    def verify(self, problem, completion):
        if completion.startswith(problem.answer):
            return Verdict(1.0, Status.CORRECT, answer=completion[:1])
        return Verdict.fail(Status.WRONG, answer=completion[:1] or None)

    def verify_answer(self, problem, answer):
        return self.verify(problem, answer)

    def generate(self, n, difficulty, seed=0):
        return [Problem(f"p{i}", f"q{i}", "a") for i in range(n)]


class HangingTask(FirstLetterTask):
    """Hangs (as a verifier on hostile input might) on completions that start with 'c'."""

    def verify(self, problem, completion):
        if completion.startswith("c"):
            time.sleep(60)
        return super().verify(problem, completion)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: extra threads only contend with the other jobs on a small CI machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def toy_config(**kw) -> GRPOConfig:
    base = dict(learning_rate=0.3, prompts_per_step=4, num_generations=8, max_completion_length=4,
                max_steps=12, seed=3, format_reward_weight=0.0, eval_on_start=True, save_steps=0,
                logging_steps=1000)
    base.update(kw)
    return GRPOConfig(**base)


def run_toy(out: str | None, resume: bool = False, kill_after_step: int | None = None, step_sleep: float = 0.0,
            **kw) -> dict:
    """Train the bigram policy on FirstLetterTask; the entry point of the killed subprocesses."""
    task = FirstLetterTask()
    policy = BigramPolicy(seed=0)
    config = toy_config(**kw)
    run = None
    if out is not None:
        run = RunDir.open(out) if resume else RunDir.create(out, {"job": "toy"})
    callbacks = []
    if kill_after_step is not None:
        class Kill:
            def on_step_end(self, trainer, step, metrics):
                if step == kill_after_step:
                    os.kill(os.getpid(), signal.SIGKILL)
        callbacks.append(Kill())
    if step_sleep:
        class Slow:  # so that a kill from outside lands at a random point of some step
            def on_step_end(self, trainer, step, metrics):
                time.sleep(step_sleep)
        callbacks.append(Slow())
    problems = task.generate(6, 1)
    with VerifierPool(task, executor="inline") as pool:
        trainer = GRPOTrainer(policy, task, config, pool, run_dir=run, problems=problems,
                              eval_problems=problems[:2], callbacks=callbacks, progress=False)
        summary = trainer.train(resume_from_checkpoint=resume or None)
    summary["_table"] = policy.table.detach().clone()
    return summary


def _strip_times(rows):
    return [{k: v for k, v in r.items() if not k.startswith("time/") and k != "eval_runtime"} for r in rows]


# -- learning -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("loss_type,extra", [
    ("dapo", {}),
    ("grpo", {"beta": 0.01, "num_iterations": 2, "steps_per_generation": 2, "per_device_train_batch_size": 8}),
    ("dr_grpo", {"scale_rewards": "none", "dynamic_sampling": "filter", "mask_truncated_completions": True}),
])
def test_grpo_learns_a_trivial_task(loss_type, extra):
    torch.manual_seed(0)
    before = BigramPolicy(seed=0).table.detach().clone()
    task = FirstLetterTask()
    policy = BigramPolicy(seed=0)
    if loss_type == "dr_grpo":  # constant normaliser: a larger rate for the same step size
        extra = {**extra, "learning_rate": 1.0}
    config = toy_config(loss_type=loss_type, **extra)
    with VerifierPool(task, executor="inline") as pool:
        trainer = GRPOTrainer(policy, task, config, pool, problems=task.generate(6, 1), progress=False)
        summary = trainer.train()
    assert not torch.equal(policy.table.detach(), before)
    train = [e for e in trainer.history if e["type"] == "train"]
    assert len(train) == 12 and train[-1]["step"] == 12
    assert summary["reward_last"] > summary["reward_first"] + 0.3, summary
    for key in ("reward", "reward_std", "frac_reward_zero_std", "clip_ratio", "clip_ratio/low_mean",
                "clip_ratio/high_mean", "entropy", "completions/mean_length", "completions/clipped_ratio",
                "loss", "grad_norm", "learning_rate"):
        assert key in train[0], key
    if extra.get("beta"):
        assert "kl" in train[-1] and train[-1]["kl"] > 0  # moved away from the reference
        assert train[0]["num_updates"] == 4  # mu = 2 passes x 2 mini-batches
    else:
        # on-policy: the log-probs the sampler returned are the trainer's
        assert train[0]["sampling/sampling_logp_difference/max"] < 1e-5


def test_dynamic_sampling_resample_replaces_uninformative_groups():
    task = FirstLetterTask()
    policy = BigramPolicy(seed=0)
    with torch.no_grad():  # almost always "a": most groups are all-correct
        policy.table[BOS, 2] = 4.0
    config = toy_config(max_steps=2, dynamic_sampling="resample", dynamic_sampling_max_tries=3)
    with VerifierPool(task, executor="inline") as pool:
        trainer = GRPOTrainer(policy, task, config, pool, problems=task.generate(6, 1), progress=False)
        first = trainer.train_steps(1)[0].metrics
    assert first["num_groups"] > config.prompts_per_step  # it drew more problems
    assert first["num_groups_used"] <= config.prompts_per_step
    assert first["frac_reward_zero_std"] > 0


def test_train_steps_and_rollback():
    task = FirstLetterTask()
    policy = BigramPolicy(seed=0)
    with VerifierPool(task, executor="inline") as pool:
        trainer = GRPOTrainer(policy, task, toy_config(), pool, problems=task.generate(6, 1), progress=False)
        snap = policy.snapshot()
        results = trainer.train_steps(3)
        assert [r.step for r in results] == [1, 2, 3] and trainer.step_count == 3
        assert not torch.equal(policy.table.detach(), snap)
        policy.restore(snap)
        assert torch.equal(policy.table.detach(), snap)


def test_helpers():
    assert format_reward("x <answer>2</answer>") == 1.0
    assert format_reward("<answer>1</answer><answer>2</answer>") == 0.0
    assert format_reward("</answer>2<answer>") == 0.0
    assert format_reward("<answer> </answer>") == 0.0
    assert [lr_factor(s, 10, 2, "constant") for s in (0, 1, 5)] == [0.5, 1.0, 1.0]
    assert lr_factor(2, 10, 2, "cosine") == 1.0 and lr_factor(10, 10, 2, "cosine") == pytest.approx(0.0)
    assert lr_factor(6, 10, 2, "linear") == pytest.approx(0.5)
    sampler = EpochSampler([Problem(str(i), "q") for i in range(5)], seed=1)
    first = [p.id for p in sampler.sample(7)]
    assert sorted(first[:5]) == ["0", "1", "2", "3", "4"]  # each once per epoch
    state = sampler.state_dict()
    rest = [p.id for p in sampler.sample(6)]
    again = EpochSampler([Problem(str(i), "q") for i in range(5)], seed=1)
    again.load_state_dict(state)
    assert [p.id for p in again.sample(6)] == rest


# -- resume ------------------------------------------------------------------------------------------

def _subprocess(out: Path, **kw) -> subprocess.Popen:
    args = ", ".join(f"{k}={v!r}" for k, v in kw.items())
    code = f"import sys; sys.path.insert(0, {str(TESTS_DIR)!r}); import test_grpo_trainer as t; t.run_toy({str(out)!r}, {args})"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    summary = run_toy(str(out), save_steps=4, eval_steps=3)
    return out, summary


def test_resume_after_kill_equals_uninterrupted_run(tmp_path, reference_run):
    """Three runs killed with SIGKILL (started together: each pays a fresh interpreter's imports),
    each resumed here; all must end with the reference run's exact weights, events and rollouts."""
    ref_dir, ref_summary = reference_run
    procs = {
        # step 6 is logged, its checkpoint (save_steps=4 -> 8) is not: the log must be cut back to 4
        "after_step_6": _subprocess(tmp_path / "after_step_6", save_steps=4, eval_steps=3, kill_after_step=6),
        # killed by the parent at whatever point it is at once step 5 is in the log
        "async": _subprocess(tmp_path / "async", save_steps=4, eval_steps=3, step_sleep=0.1),
    }
    os.environ["BIGRAM_KILL_IN_SAVE"] = "1"  # the policy kills its process halfway through saving step 6
    try:
        procs["during_checkpoint_6"] = _subprocess(tmp_path / "during_checkpoint_6", save_steps=2, eval_steps=3)
    finally:
        del os.environ["BIGRAM_KILL_IN_SAVE"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and procs["async"].poll() is None:
        out = tmp_path / "async"
        if (out / "events.jsonl").exists() and any(e["step"] >= 5 for e in RunDir(out).events()):
            break
        time.sleep(0.01)
    procs["async"].send_signal(signal.SIGKILL)

    for how, proc in procs.items():
        output = proc.communicate(timeout=120)[0].decode(errors="replace")
        assert proc.returncode == -signal.SIGKILL, (how, output)
        out = tmp_path / how
        latest = RunDir.open(out).latest_checkpoint()
        if how == "during_checkpoint_6":
            assert latest[0] == 4  # step-6 was never renamed into place
            assert any(p.name.startswith(".tmp") for p in (out / "checkpoints").iterdir())
        if how == "async":
            assert latest is None or latest[0] < 12

        summary = run_toy(str(out), resume=True, save_steps=2 if how == "during_checkpoint_6" else 4, eval_steps=3)
        assert torch.equal(summary["_table"], ref_summary["_table"]), how
        ref_run, new_run = RunDir(ref_dir), RunDir(out)
        assert _strip_times(new_run.events()) == _strip_times(ref_run.events()), how
        assert new_run.rollouts() == ref_run.rollouts(), how
        steps = [e["step"] for e in new_run.events() if e["type"] == "train"]
        assert steps == list(range(1, 13)), how  # nothing lost, nothing duplicated


def test_resume_from_a_finished_run_is_a_no_op(tmp_path):
    out = tmp_path / "run"
    first = run_toy(str(out), max_steps=3, save_steps=1)
    again = run_toy(str(out), resume=True, max_steps=3, save_steps=1)
    assert torch.equal(first["_table"], again["_table"])
    assert [e["step"] for e in RunDir(out).events() if e["type"] == "train"] == [1, 2, 3]


# -- a hung verifier -------------------------------------------------------------------------------------

def test_verifier_timeout_costs_only_that_rollout():
    task = HangingTask()
    policy = BigramPolicy(seed=0)
    config = toy_config(prompts_per_step=2, num_generations=4, max_steps=1, format_reward_weight=0.5)
    with VerifierPool(task, workers=2, timeout_s=1.0) as pool:
        trainer = GRPOTrainer(policy, task, config, pool, problems=task.generate(2, 1), progress=False)
        rows = []
        trainer._log = lambda step, kind, metrics, rollouts: rows.extend(rollouts)
        result = trainer.train_steps(1)[0]
    hung = [r for r in rows if r["completion"].startswith("c")]
    fine = [r for r in rows if not r["completion"].startswith("c")]
    assert hung and fine, [r["completion"] for r in rows]
    assert all(r["status"] == "timeout" and r["reward"] == 0.0 for r in hung)
    assert all(r["status"] in ("correct", "wrong") for r in fine)
    assert all(r["reward"] == (1.0 if r["completion"].startswith("a") else 0.0) for r in fine)
    assert result.metrics["verifier/failures"] == len(hung)
    assert result.metrics["num_updates"] == 1  # the step still trained


# -- the embedded tiny model -------------------------------------------------------------------------

class DigitFirstTask(FirstLetterTask):
    """Reward 1 when the completion starts with a digit (about 10% of a fresh model's samples)."""

    name = "digit-first"

    def verify(self, problem, completion):
        if completion[:1].isdigit():
            return Verdict(1.0, Status.CORRECT, answer=completion[:1])
        return Verdict.fail(Status.WRONG)

    def generate(self, n, difficulty, seed=0):
        return [Problem(f"p{i}", f"q{i}=") for i in range(n)]


def _tiny():
    from rungs.policies.tiny import TinyPolicy

    return TinyPolicy.new(d_model=32, n_layers=1, n_heads=2, max_seq_len=32, seed=0)


def _tiny_trainer(policy, run=None, **kw):
    task = DigitFirstTask()
    config = GRPOConfig(**{**dict(learning_rate=3e-2, prompts_per_step=4, num_generations=8, max_completion_length=6,
                                  max_steps=12, seed=0, format_reward_weight=0.0, eval_on_start=False), **kw})
    pool = VerifierPool(task, executor="inline")
    problems = task.generate(8, 1)
    return GRPOTrainer(policy, task, config, pool, run_dir=run, problems=problems, eval_problems=problems[:4],
                       progress=False)


def test_tiny_policy_learns_a_toy_task():
    policy = _tiny()
    before = policy.snapshot()
    summary = _tiny_trainer(policy).train()
    assert any(not torch.equal(before[k], v) for k, v in policy.snapshot().items())
    assert summary["reward_last"] > summary["reward_first"] + 0.4, summary


def test_tiny_policy_resume_is_exact_with_a_kl_reference(tmp_path):
    kw = dict(max_steps=4, save_steps=2, eval_steps=2, beta=0.05, num_iterations=2)
    full = _tiny()
    _tiny_trainer(full, RunDir.create(tmp_path / "full", {}), **kw).train()

    class Crash:
        def on_step_end(self, trainer, step, metrics):
            if step == 3:
                raise KeyboardInterrupt  # after step 3 is logged, before checkpoint 4

    cut = _tiny_trainer(_tiny(), RunDir.create(tmp_path / "cut", {}), **kw)
    cut.callbacks.append(Crash())
    with pytest.raises(KeyboardInterrupt):
        cut.train()
    resumed = _tiny()  # a fresh process would rebuild the policy from its spec, as here
    summary = _tiny_trainer(resumed, RunDir.open(tmp_path / "cut"), **kw).train(resume_from_checkpoint=True)
    assert summary["steps"] == 4
    for name, tensor in full.snapshot().items():
        assert torch.equal(tensor, resumed.snapshot()[name]), name
    a, b = RunDir(tmp_path / "full"), RunDir(tmp_path / "cut")
    assert _strip_times(a.events()) == _strip_times(b.events())
    assert a.rollouts() == b.rollouts()


# -- the command line ----------------------------------------------------------------------------------

def test_cli_train_resume_and_report(tmp_path, capsys):
    from rungs.cli import main

    out = tmp_path / "run"
    tiny = ["--policy", "tiny:random", "--policy-option", "d_model=32", "--policy-option", "n_layers=1",
            "--policy-option", "n_heads=2", "--policy-option", "max_seq_len=64"]
    base = ["train", "--task", "countdown", "--problems", "builtin:countdown-easy", *tiny, "--prompts-per-step", "2",
            "--num-generations", "2", "--max-completion-length", "8", "--eval-problems", "builtin:countdown-dev",
            "--eval-limit", "2", "--workers", "1", "--learning-rate", "1e-3", "--no-progress"]
    assert main([*base, "--max-steps", "2", "--save-steps", "1", "--out", str(out)]) == 0
    run = RunDir.open(out)
    config = run.read_config()
    assert config["job"] == "train" and config["grpo"]["max_steps"] == 2 and config["policy_options"]["d_model"] == 32
    assert [s for s, _ in run.checkpoints()] == [1, 2]
    assert (out / "summary.json").exists() and (out / "reward.png").exists() and (out / "accuracy.png").exists()
    # An occupied --out, a changed setting on resume, and a bad value are one-line errors.
    assert main([*base, "--max-steps", "2", "--out", str(out)]) == 2
    assert main(["train", "--resume", str(out), "--beta", "0.1"]) == 2
    assert main(["train", "--resume", str(out), "--task", "integration"]) == 2
    assert main([*base, "--loss-type", "ppo", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "already holds a run" in err and "beta=0.0" in err and "task='countdown'" in err and "GRPOConfig.loss_type" in err
    # --max-steps may grow on resume: the run continues at step 3.
    assert main(["train", "--resume", str(out), "--max-steps", "3", "--no-progress", "--no-plot"]) == 0
    assert [e["step"] for e in run.events() if e["type"] == "train"] == [1, 2, 3]
    capsys.readouterr()
    assert main(["report", str(out), "--json", "--no-plot"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 3 and summary["completed"] and "eval_accuracy_end" in summary
