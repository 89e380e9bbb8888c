"""What the jobs print and draw (issue 9, items 12, 14, 16): labels that state what was measured,
--no-progress hiding bars only, --logging-steps lines, and plots where nothing hides anything."""

from __future__ import annotations

import json

import pytest

from rungs.cli import main

TINY = ["--policy", "tiny:random", "--policy-option", "d_model=32", "--policy-option", "n_layers=1",
        "--policy-option", "n_heads=2", "--policy-option", "max_seq_len=128"]


def test_ladder_without_progress_prints_its_table_and_the_logging_lines(tmp_path, capsys):
    out = tmp_path / "ladder"
    argv = ["ladder", "--problems", "builtin:integration-hard", "--limit", "1", "--eval-problems", "builtin:integration-dev",
            "--eval-limit", "1", "--depth", "1", "--width", "1", *TINY, "--max-steps", "2", "--prompts-per-step", "1",
            "--num-generations", "2", "--max-completion-length", "8", "--dynamic-sampling", "off", "--workers", "1",
            "--logging-steps", "1",
            "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "ladder: 1 problem (" in text  # the result table (s35 K1: "1 problems")
    assert "step 1  reward" in text and "step 2  reward" in text  # --logging-steps 1, without a bar
    assert "held-out greedy accuracy at start (step 0)" in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["eval_step_start"] == 0  # "start" is step 0, not the first eval_steps


def test_train_says_one_problem_and_one_step_in_the_singular(tmp_path, capsys):
    """s35 K1: `rungs train: 1 problems, 1 steps of ...`."""
    argv = ["train", "--task", "integration", "--problems", "builtin:integration-hard", "--limit", "1", *TINY,
            "--max-steps", "1", "--prompts-per-step", "1", "--num-generations", "2", "--max-completion-length", "8",
            "--workers", "1", "--no-progress", "--no-plot", "--out", str(tmp_path / "train")]
    assert main(argv) == 0
    assert "rungs train: 1 problem, 1 step of 1 x 2 samples;" in capsys.readouterr().out


class _Bar:
    """Stands in for tqdm: records the postfix shown at each update."""

    shown: list[tuple[int, str]] = []

    def __init__(self, *args, total=0, initial=0, **kwargs):
        self.n, self.postfix = initial, ""

    def set_postfix(self, values, refresh=True):
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def update(self, k=1):
        self.n += k
        _Bar.shown.append((self.n, self.postfix))

    def close(self):
        pass


def test_ttrl_bar_shows_the_solved_count_of_the_problems_done(tmp_path, monkeypatch):
    import tqdm.auto

    from rungs.pipelines.ttrl import TTRLConfig, run_ttrl
    from rungs.policies.tiny import TinyPolicy
    from rungs.tasks import get_task
    from rungs.train.grpo_config import GRPOConfig
    from rungs.verify.pool import VerifierPool

    monkeypatch.setattr(tqdm.auto, "tqdm", _Bar)
    _Bar.shown = []
    task = get_task("integration")
    policy = TinyPolicy.new(alphabets=[task.alphabet], seed=0, d_model=32, n_layers=1, n_heads=2, mlp_hidden=64,
                            max_seq_len=128)
    config = TTRLConfig(problems="builtin:integration-hard", limit=2, steps=1, depth=1, width=1, out=str(tmp_path / "t"))
    grpo = GRPOConfig(max_completion_length=8, prompts_per_step=1, num_generations=2, learning_rate=1e-3,
                      save_steps=0, eval_on_start=False)
    with VerifierPool(task, workers=1) as pool:
        run_ttrl(config, grpo, policy=policy, task=task, pool=pool, echo=False, progress=True)
    assert [n for n, _ in _Bar.shown] == [1, 2]
    assert all(postfix.endswith(f"/{n}") for n, postfix in _Bar.shown), _Bar.shown  # not one problem behind


def test_coinciding_series_stay_visible():
    from rungs.report import plot_lines

    fig = plot_lines(None, {"pass@k": ([1, 2, 4], [0.2, 0.4, 0.5], None),
                            "best-of-k": ([1, 2, 4], [0.2, 0.4, 0.5], None)}, "n", "accuracy", logx2=True)
    under, over = fig.axes[0].get_lines()[:2]
    assert under.get_markersize() > over.get_markersize()  # the one beneath shows around the one above
    assert under.get_linestyle() != over.get_linestyle()


def test_ttrl_outcomes_legend_does_not_cover_the_bars(tmp_path, monkeypatch):
    import rungs.report
    from rungs.pipelines.ttrl import plot_outcomes

    figures = []
    monkeypatch.setattr(rungs.report, "save_png", lambda fig, path: figures.append(fig))
    rows = [{"solved_before": i % 4 == 0, "solved_after": i % 2 == 0, "ever_solved": i % 3 == 0, "steps": 6}
            for i in range(12)]
    plot_outcomes(tmp_path / "o.png", rows)
    (fig,) = figures
    fig.canvas.draw()
    ax = fig.axes[0]
    legend, area = ax.get_legend().get_window_extent(), ax.get_window_extent()
    assert not legend.overlaps(area)


def test_demo_plot_and_labels_say_what_was_measured(tmp_path):
    from rungs.pipelines.demo import plot_stages, stages_title

    stages = [{"stage": "base", "label": "base", "accuracy": 0.0},
              {"stage": "LADDER checkpoint (shipped ..., evaluated here, not trained)", "label": "LADDER\n(shipped checkpoint)",
               "accuracy": 0.0},
              {"stage": "after TTRL", "label": "LADDER + TTRL", "accuracy": 0.0}]
    title = stages_title({"problems": 12, "source": "builtin:integration-hard", "stages": stages})
    assert "climb" not in title and "the same (0%) at every stage" in title
    fig = plot_stages(tmp_path / "demo.png", stages, title)
    ax = fig.axes[0]
    assert "climb" not in ax.get_title()
    assert [t.get_text() for t in ax.get_xticklabels()][1] == "LADDER\n(shipped checkpoint)"


def test_eval_names_every_plot_it_writes(tmp_path, capsys):
    from test_evaluate import AddTask, FakePolicy

    from rungs.pipelines.evaluate import EvalConfig, evaluate
    from rungs.verify.pool import VerifierPool

    problems = tmp_path / "add.jsonl"
    problems.write_text("".join(json.dumps(p.to_dict()) + "\n" for p in AddTask().generate(3, 1, seed=3)))
    config = EvalConfig(task="add", problems=str(problems), policy="fake", n=[1, 2], seeds=1,
                        strategy=["greedy", "majority"], out=str(tmp_path / "e"), progress=False)
    with VerifierPool(AddTask(), executor="inline") as pool:
        evaluate(config, policy=FakePolicy(), task=AddTask(), pool=pool, echo=True)
    text = capsys.readouterr().out
    for name in ("accuracy_vs_n.png", "accuracy_vs_tokens.png"):
        assert (tmp_path / "e" / name).exists() and name in text


@pytest.mark.parametrize("argv", [["demo", "--help"], ["ttrl", "--help"]])
def test_progress_help_says_it_is_bars_only(argv, capsys):
    with pytest.raises(SystemExit):
        main(argv)
    assert "progress bars" in " ".join(capsys.readouterr().out.split())
