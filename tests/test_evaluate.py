"""The evaluation job end to end with a fake task and a deterministic fake policy: summary,
resume after a crash (including a torn last line), outputs, plots, and the CLI."""

from __future__ import annotations

import json
import random
from collections.abc import Hashable, Sequence
from pathlib import Path

import pytest

from rungs.errors import UserError
from rungs.pipelines.evaluate import RECORDS_FILE, EvalConfig, evaluate, read_records
from rungs.policies.base import Policy, SamplingParams
from rungs.report import plot_lines
from rungs.tasks.base import Task
from rungs.types import Completion, Problem, Status, Verdict
from rungs.verify.pool import VerifierPool

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class AddTask(Task):
    """'a+b' -> a + b; answers are integers, and '07' and '7' are one answer."""

    name = "add"

    def prompt(self, problem: Problem, style: str = "instruct") -> str:
        return problem.text

    def verify_answer(self, problem: Problem, answer: str) -> Verdict:
        if not answer.strip().lstrip("-").isdigit():
            return Verdict.fail(Status.UNPARSEABLE, answer=answer)
        if int(answer) == int(problem.answer):
            return Verdict(1.0, Status.CORRECT, answer=answer)
        return Verdict.fail(Status.WRONG, answer=answer)

    def answer_key(self, problem: Problem, answer: str) -> Hashable | None:
        return str(int(answer)) if answer.strip().lstrip("-").isdigit() else None

    def generate(self, n: int, difficulty: float, seed: int = 0) -> list[Problem]:
        rng = random.Random(seed)
        out = []
        for i in range(n):
            a, b = rng.randint(1, 50), rng.randint(1, 50)
            out.append(Problem(f"add{i}", f"{a}+{b}", str(a + b)))
        return out


class FakePolicy(Policy):
    """Deterministic given (seed, prompt): right with a probability that depends on the problem,
    else one of two wrong answers, sometimes no answer. Raises KeyboardInterrupt (a crash) on
    call number `crash_on`."""

    name = "fake"

    def __init__(self, crash_on: int | None = None) -> None:
        self.crash_on = crash_on
        self.calls = 0

    def generate(self, prompts: Sequence[str], n: int = 1, sampling: SamplingParams | None = None) -> list[list[Completion]]:
        sampling = sampling or SamplingParams()
        self.calls += 1
        if self.crash_on is not None and self.calls >= self.crash_on:
            raise KeyboardInterrupt
        out = []
        for prompt in prompts:
            a, b = map(int, prompt.split("+"))
            truth = a + b
            p_right = (a % 5) / 5
            rng = random.Random(f"{sampling.seed}|{prompt}")
            row = []
            for _ in range(n):
                if sampling.greedy:
                    text = f"<answer>{truth if p_right >= 0.5 else truth + 1}</answer>"
                elif rng.random() < 0.1:
                    text = "I give up"
                else:
                    ans = truth if rng.random() < p_right else truth + rng.choice([1, 2])
                    text = f"<answer>{ans:03d}</answer>" if rng.random() < 0.3 else f"<answer>{ans}</answer>"
                ids = list(range(len(text)))
                row.append(Completion(text, ids, [-rng.random() for _ in ids], "stop"))
            out.append(row)
        return out


@pytest.fixture()
def problems_file(tmp_path: Path) -> Path:
    path = tmp_path / "add.jsonl"
    path.write_text("".join(json.dumps(p.to_dict()) + "\n" for p in AddTask().generate(10, 1, seed=3)))
    return path


def make_config(problems: Path, out: Path, **kw) -> EvalConfig:
    base = dict(task="add", problems=str(problems), policy="fake", n=[1, 2, 4, 8], seeds=2, batch_size=3,
                strategy=["greedy", "sample", "majority", "best_of_n", "weighted", "fire"], out=str(out), progress=False,
                plot=False)
    base.update(kw)
    return EvalConfig(**base)


def run(config: EvalConfig, policy: Policy | None = None):
    with VerifierPool(AddTask(), executor="inline") as pool:
        return evaluate(config, policy=policy or FakePolicy(), task=AddTask(), pool=pool, echo=False)


def comparable(summary: dict) -> dict:
    """The summary without wall-clock times, which no two runs share."""
    return {k: v for k, v in summary.items() if k != "timing"} | {
        "greedy": {k: v for k, v in (summary["greedy"] or {}).items() if k != "wall_s_per_problem"}}


def test_summary_has_every_metric_and_sensible_values(problems_file: Path, tmp_path: Path) -> None:
    result = run(make_config(problems_file, tmp_path / "run", subsets=70))  # C(8, 4) = 70: every subset
    m = result.summary["metrics"]
    assert set(m) == {"pass@k", "maj@k", "best-of-k", "weighted@k",
                      "fire pass@k", "fire maj@k", "fire best-of-k", "fire weighted@k"}
    for name, values in m.items():
        assert len(values["mean"]) == 4 and len(values["per_seed"]) == 2, name
        assert all(0.0 <= x <= 1.0 for x in values["mean"]), name
    # pass@1 is the fraction of correct samples; pass@k grows with k; oracle best-of-k >= maj@k.
    records = [r for r in result.records if r["sampler"] == "pass@k"]
    frac = [sum(s["verdict"]["status"] == "correct" for r in records if r["seed"] == seed for s in r["samples"]) / 80
            for seed in (0, 1)]
    assert m["pass@k"]["mean"][0] == pytest.approx(sum(frac) / 2)
    assert m["pass@k"]["mean"] == sorted(m["pass@k"]["mean"])
    assert all(b >= a - 1e-12 for a, b in zip(m["maj@k"]["mean"], m["best-of-k"]["mean"]))
    assert m["best-of-k"]["mean"] == pytest.approx(m["pass@k"]["mean"])  # 0/1 rewards, exact subsets here
    greedy_right = [int(p.text.split("+")[0]) % 5 >= 3 for p in AddTask().generate(10, 1, seed=3)]
    assert result.summary["greedy"]["mean"] == pytest.approx(sum(greedy_right) / 10)
    assert result.summary["cost"]["pass@k"]["tokens_per_problem"][-1] == pytest.approx(
        8 * result.summary["cost"]["pass@k"]["tokens_per_sample"])
    # Answer keys group "007" with "7"; answerless samples have no key.
    keys = {(s["text"], s["key"]) for r in records for s in r["samples"]}
    assert ("I give up", None) in keys
    assert any(t.startswith("<answer>0") and k is not None and not k.startswith("0") for t, k in keys)
    out = json.loads((tmp_path / "run" / "results.json").read_text())
    assert out["summary"]["metrics"]["maj@k"]["mean"] == m["maj@k"]["mean"]
    assert len(out["records"]) == 10 + 2 * 10 * 2  # greedy once + 2 samplers x 2 seeds x 10 problems
    assert "maj@k" in result.table and f"greedy: {sum(greedy_right) / 10:.3f}" in result.table


def test_the_progress_bar_names_each_pass_so_its_count_is_not_read_as_problems(problems_file: Path, tmp_path: Path,
                                                                                capsys) -> None:
    run(make_config(problems_file, tmp_path / "run", strategy=["greedy", "sample"], progress=True))
    err = capsys.readouterr().err
    # greedy once + one sampler x 2 seeds = 3 passes over 10 problems: the bar runs to 30
    assert "pass 1/3 (greedy, seed 0)" in err and "pass 3/3 (pass@k, seed 1)" in err and "30/30" in err


def test_interrupted_then_resumed_equals_straight_run(problems_file: Path, tmp_path: Path) -> None:
    straight = run(make_config(problems_file, tmp_path / "straight"))

    out = tmp_path / "crashed"
    with pytest.raises(KeyboardInterrupt):
        run(make_config(problems_file, out), FakePolicy(crash_on=6))
    partial = read_records(out / RECORDS_FILE)
    assert 0 < len(partial) < len(straight.records)
    with open(out / RECORDS_FILE, "a") as handle:  # a crash in the middle of writing a line
        handle.write('{"sampler": "pass@k", "seed": 1, "problem_id": "add9", "samp')

    policy = FakePolicy()
    resumed = run(make_config(problems_file, out, resume=True), policy)
    assert comparable(resumed.summary) == comparable(straight.summary)
    lines = (out / RECORDS_FILE).read_text().splitlines()
    assert len(lines) == len(straight.records) and all(json.loads(x) for x in lines)
    # Nothing already finished was sampled again: fewer generate calls than a full run makes.
    assert policy.calls < 4 + 2 * 2 * 4

    again = FakePolicy()
    rerun = run(make_config(problems_file, out, resume=True), again)
    assert again.calls == 0 and comparable(rerun.summary) == comparable(straight.summary)


def test_a_run_killed_before_its_later_seeds_summarizes_the_seeds_it_started(problems_file: Path, tmp_path: Path) -> None:
    from rungs.pipelines.evaluate import format_summary, summarize
    from rungs.strategies import plan

    config = make_config(problems_file, tmp_path / "killed", seeds=3, strategy=["greedy", "majority"])
    with pytest.raises(KeyboardInterrupt):
        run(config, FakePolicy(crash_on=7))  # greedy (4 batches), then seed 0: seeds 1 and 2 never start
    records = read_records(tmp_path / "killed" / RECORDS_FILE)
    assert {r["seed"] for r in records if r["sampler"] != "greedy"} == {0}
    problems = AddTask().generate(10, 1, seed=3)
    summary = summarize(config, plan(config.strategy), problems, records)  # raised on NaN seeds before
    assert not summary["complete"]
    for metric in summary["metrics"].values():
        assert metric["seeds"] == 1 and metric["std"] == [0.0] * 4
        assert all(0.0 <= x <= 1.0 for x in metric["mean"])
    assert "over the 1 of 3 seeds started" in format_summary(config, summary)


def test_resume_refuses_changed_sampling_and_fresh_run_refuses_old_dir(problems_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    run(make_config(problems_file, out, seeds=1, strategy=["majority"]))
    with pytest.raises(UserError, match="temperature"):
        run(make_config(problems_file, out, seeds=1, strategy=["majority"], temperature=0.5, resume=True))
    with pytest.raises(UserError, match="--resume"):
        run(make_config(problems_file, out, seeds=1, strategy=["majority"]))


class SmallMemoryPolicy(FakePolicy):
    """FakePolicy on a machine that holds at most `fits` samples of a prompt: it refuses a call for
    more before sampling (`Policy.check_generate`, as the tiny and hf policies refuse a huge --n)."""

    def __init__(self, fits: int) -> None:
        super().__init__()
        self.fits = fits

    def check_generate(self, prompts: Sequence[str], n: int = 1, sampling: SamplingParams | None = None) -> None:
        if n > self.fits:
            raise UserError(f"fake policy: {n} samples would not fit; expected at most {self.fits} (a smaller --n)")

    def generate(self, prompts: Sequence[str], n: int = 1, sampling: SamplingParams | None = None) -> list[list[Completion]]:
        self.check_generate(prompts, n, sampling)
        return super().generate(prompts, n, sampling)


def test_an_eval_the_policy_refuses_samples_nothing_and_leaves_no_run_directory(problems_file: Path, tmp_path: Path) -> None:
    """The greedy pass (one sample a problem) would fit and the sampled pass (8) would not: the
    refusal comes before the greedy pass samples, so that the new run directory is removed, not
    left with greedy records whose resume meets the same refusal. A run that fits is unchanged."""
    out = tmp_path / "run"
    policy = SmallMemoryPolicy(fits=4)
    with pytest.raises(UserError, match="8 samples would not fit"):
        run(make_config(problems_file, out, seeds=1, strategy=["greedy", "majority"]), policy)
    assert policy.calls == 0 and not out.exists()
    (tmp_path / "mine").mkdir()  # an existing --out keeps what was there, and only that
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="8 samples would not fit"):
        run(make_config(problems_file, tmp_path / "mine", seeds=1, strategy=["greedy", "majority"]), policy)
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]
    result = run(make_config(problems_file, out, n=[1, 4], seeds=1, strategy=["greedy", "majority"]), policy)
    assert policy.calls == 8 and len(result.records) == 20  # 4 batches of 3 problems, greedy then sampled


def test_plots_are_pngs_with_one_line_per_strategy(problems_file: Path, tmp_path: Path) -> None:
    from rungs.pipelines.evaluate import plot_summary

    result = run(make_config(problems_file, tmp_path / "run", strategy=["greedy", "majority", "best_of_n"]))
    figures = plot_summary(result.out_dir, result.summary)
    for name in ("accuracy_vs_n", "accuracy_vs_tokens"):
        data = (result.out_dir / f"{name}.png").read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 5000
    _, labels = figures["accuracy_vs_n"].axes[0].get_legend_handles_labels()
    assert sorted(labels) == ["best-of-k", "greedy", "maj@k", "pass@k"]


def test_plot_lines_draws_each_series(tmp_path: Path) -> None:
    fig = plot_lines(tmp_path / "p.png", {"a": ([1, 2, 4], [0.1, 0.2, 0.3], [0.01, 0.0, 0.02]),
                                          "b": ([1, 2, 4], [0.3, 0.2, 0.1], None)},
                     "n", "accuracy", logx2=True)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert ax.get_legend_handles_labels()[1] == ["a", "b"]
    assert (tmp_path / "p.png").read_bytes()[:8] == PNG_SIGNATURE


def test_config_validation() -> None:
    with pytest.raises(UserError, match="--n"):
        EvalConfig(n=[0, 2])
    with pytest.raises(UserError, match="--seeds"):
        EvalConfig(seeds=0)
    assert EvalConfig(task="countdown", n=[4, 1, 4]).n == [1, 4]
    assert EvalConfig(task="countdown").problems == "builtin:countdown-easy"


def test_cli_reads_yaml_and_flags(tmp_path: Path) -> None:
    import argparse

    from rungs.commands import eval as eval_cmd
    from rungs.config import from_namespace

    cfg = tmp_path / "eval.yaml"
    cfg.write_text("task: countdown\nn: [1, 2, 8]\nseeds: 2\nstrategy: [greedy, majority]\n")
    parser = argparse.ArgumentParser()
    eval_cmd.add_arguments(parser)
    args = parser.parse_args(["--config", str(cfg), "--seeds", "5", "--strategy", "majority,fire:10"])
    config = from_namespace(EvalConfig, args, args.config)
    assert (config.task, config.n, config.seeds, config.strategy) == ("countdown", [1, 2, 8], 5, ["majority", "fire:10"])


def test_cli_end_to_end_with_real_task_policy_and_pool(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`rungs eval` on a built-in set: the real integration task, a (random) tiny model, the
    sandboxed verifier pool; then --resume finds nothing left to do."""
    from rungs.cli import main

    out = tmp_path / "run"
    argv = ["eval", "--task", "integration", "--problems", "builtin:integration-easy", "--policy", "tiny:random",
            "--strategy", "greedy,majority", "--n", "1,2", "--seeds", "1", "--limit", "3", "--max-new-tokens", "12",
            "--workers", "1", "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "maj@k" in text and "greedy:" in text
    results = json.loads((out / "results.json").read_text())
    assert results["summary"]["problems"] == 3 and len(results["records"]) == 3 + 3
    assert (out / "accuracy_vs_n.png").read_bytes()[:8] == PNG_SIGNATURE
    assert main([*argv, "--resume"]) == 0
    assert json.loads((out / "results.json").read_text())["summary"]["metrics"] == results["summary"]["metrics"]
    assert main([*argv[:-2], "--out", str(out), "--n", "0"]) == 2  # a bad flag is a one-line error
    assert "--n" in capsys.readouterr().err


def test_eval_through_the_openai_policy(problems_file: Path, tmp_path: Path) -> None:
    """`--policy openai:URL --model NAME`: the fake policy served by `rungs serve` on 127.0.0.1."""
    import threading

    from rungs.serve import make_server

    server = make_server(FakePolicy(), "127.0.0.1", 0, model_name="fake-served")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        config = make_config(problems_file, tmp_path / "run", policy=f"openai:{url}", model="fake-served",
                             strategy=["greedy", "majority", "weighted"], seeds=1, n=[1, 4])
        with VerifierPool(AddTask(), executor="inline") as pool:
            result = evaluate(config, task=AddTask(), pool=pool, echo=False)
    finally:
        server.shutdown()
        server.server_close()
    m = result.summary["metrics"]
    assert set(m) == {"pass@k", "maj@k", "weighted@k"}
    assert 0.0 < m["pass@k"]["mean"][1] <= 1.0
    assert result.summary["greedy"]["mean"] == pytest.approx(
        sum(int(p.text.split("+")[0]) % 5 >= 3 for p in AddTask().generate(10, 1, seed=3)) / 10)


class ThinkingPolicy(Policy):
    """Answers '1+1' with the right answer inside its reasoning and none after it."""

    name = "thinking"

    def generate(self, prompts: Sequence[str], n: int = 1, sampling: SamplingParams | None = None) -> list[list[Completion]]:
        text = "<think>so it is \\boxed{2}</think> that was easy"
        return [[Completion(text, list(range(len(text))), [-0.1] * len(text), "stop") for _ in range(n)] for _ in prompts]


@pytest.mark.parametrize(("delimiters", "accuracy"), [([], 1.0), (["</think>"], 0.0)])
def test_reasoning_delimiters_reach_the_jobs_task(tmp_path: Path, delimiters: list[str], accuracy: float) -> None:
    """--reasoning-delimiters (TRL's reasoning_delimiters) changes what the job grades: an answer
    only inside the reasoning counts by default and not with '</think>'."""
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps({"id": "m0", "problem": "1+1", "answer": "2"}) + "\n")
    config = EvalConfig(task="math", problems=str(path), policy="thinking", n=[1], seeds=1, strategy=["greedy"],
                        out=str(tmp_path / "run"), progress=False, plot=False, executor="inline",
                        reasoning_delimiters=delimiters)
    assert config.build_task().reasoning_delimiters == (tuple(delimiters) or None)
    result = evaluate(config, policy=ThinkingPolicy(), echo=False)
    assert result.summary["greedy"]["mean"] == accuracy


@pytest.mark.parametrize("command", ["eval", "ladder", "ttrl", "ttt", "train", "demo"])
def test_every_job_takes_reasoning_delimiters_and_drops_blank_ones_as_the_flag_does(command: str, tmp_path: Path) -> None:
    """A blank tag means the same in YAML as on the command line and in Python (`reasoning_tags`):
    none; `reasoning_delimiters: [""]` runs as if no delimiter were given, not refused."""
    import argparse

    from rungs.commands import demo, eval, ladder, train, ttrl, ttt
    from rungs.commands.train import TrainJobConfig
    from rungs.config import from_namespace
    from rungs.errors import UserError
    from rungs.pipelines.demo import DemoConfig
    from rungs.pipelines.ladder import LadderConfig
    from rungs.pipelines.ttrl import TTRLConfig
    from rungs.pipelines.ttt import TTTConfig

    module, cls = {"eval": (eval, EvalConfig), "ladder": (ladder, LadderConfig), "ttrl": (ttrl, TTRLConfig),
                   "ttt": (ttt, TTTConfig), "train": (train, TrainJobConfig), "demo": (demo, DemoConfig)}[command]
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    args = parser.parse_args(["--reasoning-delimiters", "</think>,</reasoning>"])
    assert args.reasoning_delimiters == ["</think>", "</reasoning>"]
    assert parser.parse_args(["--reasoning-delimiters", " ,"]).reasoning_delimiters == []  # the flag drops blank items
    task = {"train": {"task": "integration"}, "ttt": {"task": "arc"}}.get(command, {})
    settings = tmp_path / "job.yaml"
    for text, kept in (('[""]', []), ('[" ", "</think>", ""]', ["</think>"])):
        settings.write_text(f"reasoning_delimiters: {text}\n")
        config = from_namespace(cls, argparse.Namespace(**task), str(settings))
        assert config.reasoning_delimiters == kept
        assert config.build_task().reasoning_delimiters == (tuple(kept) or None)
    settings.write_text("reasoning_delimiters: [1]\n")  # not a tag: refused in one line, naming the setting
    with pytest.raises(UserError, match="reasoning_delimiters"):
        from_namespace(cls, argparse.Namespace(**task), str(settings))
    with pytest.raises(UserError, match="reasoning_delimiters"):
        cls(**task, reasoning_delimiters=[None])  # type: ignore[list-item]


def test_a_greedy_only_run_says_it_drew_no_samples(problems_file: Path, tmp_path: Path) -> None:
    result = run(make_config(problems_file, tmp_path / "greedy", n=[1, 2], seeds=1, strategy=["greedy"]))
    assert result.summary["metrics"] == {} and result.summary["samples_per_problem"] == 0
    assert result.summary["greedy"] is not None
