"""Symbolic easier variants of integrals, generic variant trees, and the two CLI commands."""

from __future__ import annotations

import json
import random

import pytest
import sympy

from rungs.cli import main
from rungs.errors import UserError
from rungs.tasks import get_task
from rungs.tasks.base import Task, Variant
from rungs.tasks.integration.generator import difficulty_of, generate_problems, x
from rungs.tasks.integration.problem import parse_integral
from rungs.tasks.integration.variants import (
    TRANSFORMS,
    easier_variants,
    elementary_integrable,
    fingerprint,
)
from rungs.types import Problem, Verdict
from rungs.variants.tree import load_tree, render_tree, save_tree, variant_tree
from rungs.verify.safe_expr import parse_sympy


def _integrand(problem: Problem) -> sympy.Expr:
    return parse_integral(problem.text).integrand


# ---- symbolic variants ---------------------------------------------------------------------------


@pytest.mark.parametrize("level", [2, 3, 4, 5, 6])
def test_variants_parse_are_no_harder_and_distinct(level):
    for parent in generate_problems(3, level, seed=level):
        variants = easier_variants(parent, 5, random.Random(0))
        assert 0 < len(variants) <= 5
        parent_difficulty = difficulty_of(_integrand(parent))
        keys = {fingerprint(_integrand(parent))}
        for k, v in enumerate(variants):
            f = _integrand(v.problem)  # the safe parser reads it back
            assert f.has(x)
            assert v.difficulty == difficulty_of(f) <= parent_difficulty
            assert v.transform in TRANSFORMS and v.parent_id == parent.id and v.depth == 1
            assert v.problem.id == f"{parent.id}/v{k}" and v.problem.answer is None
            assert elementary_integrable(f)
            keys.add(fingerprint(f))
        assert len(keys) == len(variants) + 1  # no duplicates, none equal to the parent


def test_variants_are_deterministic_in_rng():
    parent = generate_problems(1, 6, seed=2)[0]
    a = easier_variants(parent, 4, random.Random(7))
    b = easier_variants(parent, 4, random.Random(7))
    assert [v.problem.text for v in a] == [v.problem.text for v in b]


def test_expected_edits_appear():
    parent = Problem("p", "integrate(3*x**2 + 2*x*cos(x**2), x)")
    variants = easier_variants(parent, 50, random.Random(0))
    by_text = {v.problem.text for v in variants}
    assert "integrate(2*x*cos(x**2), x)" in by_text  # drop_term
    assert "integrate(3*x**2 + 2*cos(x), x)" in by_text  # unchain: undo u = x**2
    assert {"drop_term", "unchain", "simplify_coefficient", "lower_exponent"} <= {v.transform for v in variants}


def test_variable_and_bounds_are_kept():
    for v in easier_variants(Problem("t", "integrate(t*exp(2*t) + 3*t**2, t)"), 5, random.Random(0)):
        parsed = parse_integral(v.problem.text)
        assert str(parsed.var) == "t" and {str(s) for s in parsed.integrand.free_symbols} == {"t"}
    for v in easier_variants(Problem("d", "integrate(x*sin(x) + x**3, (x, 0, 1))"), 5, random.Random(0)):
        assert parse_integral(v.problem.text).definite and v.problem.text.endswith("(x, 0, 1))")


def test_unparseable_problem_is_a_user_error():
    with pytest.raises(UserError):
        easier_variants(Problem("bad", "integrate(__import__('os'), x)"), 3, random.Random(0))


def test_elementary_integrable_recogniser():
    yes = ["x**3 + 2", "x*exp(3*x)", "x**2*sin(x)", "log(x)", "exp(x)*cos(2*x)", "x*cos(x**2)",
           "x/(x**2 + 1)", "exp(x)/(exp(x) + 1)", "sin(x)**2*cos(x)", "x/(x**4 + 1)", "cos(log(x))/x", "1/(x**2 + 1)"]
    no = ["cos(x**2)", "exp(x**2)", "sin(x)/x", "1/(x**4 + 1)", "exp(x)/x", "1/log(x)"]
    assert all(elementary_integrable(parse_sympy(s)) for s in yes)
    assert not any(elementary_integrable(parse_sympy(s)) for s in no)


def test_fingerprint_identifies_equal_integrands():
    assert fingerprint(parse_sympy("2*(x + 1)")) == fingerprint(parse_sympy("2*x + 2"))
    assert fingerprint(parse_sympy("sin(x)**2")) == fingerprint(parse_sympy("1 - cos(x)**2"))
    assert fingerprint(parse_sympy("x**2")) != fingerprint(parse_sympy("x**3"))


def test_check_solvable_drops_unsolved_and_attaches_answers():
    parent = Problem("p", "integrate(x**2*exp(x) + 3*x*sin(x), x)")
    calls = []

    def fake_solve(texts, timeout_s):
        calls.append((list(texts), timeout_s))
        return [None if i % 2 else "ANSWER" for i in range(len(texts))]

    variants = easier_variants(parent, 3, random.Random(0), check_solvable=True, timeout_s=1.5, solve=fake_solve)
    assert len(variants) == 3 and all(v.problem.answer == "ANSWER" for v in variants)
    assert calls and all(t == 1.5 for _, t in calls)


def test_check_solvable_with_sympy_in_a_worker():
    task = get_task("integration")
    parent = Problem("p", "integrate(x*exp(2*x) + 4*x**3, x)")
    variants = easier_variants(parent, 3, random.Random(0), check_solvable=True, timeout_s=20)
    assert variants
    for v in variants:
        assert v.problem.answer is not None
        assert task.verify_answer(v.problem, v.problem.answer).correct


# ---- generic trees -------------------------------------------------------------------------------


class _ToyTask(Task):
    """Problems are integers as text; variants are smaller integers (with deliberate repeats)."""

    name = "toy"

    def prompt(self, problem, style="instruct"):
        return problem.text

    def verify_answer(self, problem, answer):
        return Verdict.fail("wrong")  # never called

    def generate(self, n, difficulty, seed=0):
        return []

    def variants(self, problem, n, rng):
        value = int(problem.text)
        children = [value - 1, value - 2, value - 1, value // 2, value - 3, value - 4][:n + 1]
        return [Variant(Problem(f"{problem.id}/v{k}", str(c)), float(c), "smaller", problem.id)
                for k, c in enumerate(children) if c > 0]


def test_tree_respects_depth_width_and_dedups_across_the_tree():
    task = _ToyTask()
    root = Problem("r", "100")
    tree = variant_tree(task, root, depth=3, width=3)
    texts = [v.problem.text for v in tree]
    assert len(texts) == len(set(texts)) and "100" not in texts
    assert {v.depth for v in tree} == {1, 2, 3}
    by_id = {v.problem.id: v for v in tree}
    for v in tree:
        assert v.meta["root_id"] == "r"
        parent_depth = 0 if v.parent_id == "r" else by_id[v.parent_id].depth
        assert v.depth == parent_depth + 1
    children = {}
    for v in tree:
        children.setdefault(v.parent_id, []).append(v)
    assert max(len(c) for c in children.values()) <= 3
    assert [v.problem.text for v in tree if v.depth == 1] == ["99", "98"]  # the repeated 99 is dropped
    assert variant_tree(task, root, depth=1, width=2) == [v for v in tree if v.depth == 1][:2]


def test_tree_accepts_any_variant_maker():
    calls = []

    def maker(problem, n, rng):
        calls.append(problem.id)
        return [Variant(Problem(problem.id + "/a", problem.text + "a"), 1.0, "llm:easier", problem.id)]

    tree = variant_tree(_ToyTask(), Problem("r", "1"), depth=2, width=4, make_variants=maker)
    assert calls == ["r", "r/a"] and [v.problem.text for v in tree] == ["1a", "1aa"]


def test_integration_tree_is_deduplicated_and_never_harder(tmp_path):
    task = get_task("integration")
    root = Problem("root", "integrate(x**2*exp(3*x) + 5*x*sin(x**2), x)")
    tree = variant_tree(task, root, depth=2, width=4, seed=1)
    keys = [task.problem_key(v.problem) for v in tree]
    assert len(keys) == len(set(keys)) and task.problem_key(root) not in keys
    difficulty = {"root": task.difficulty(root)} | {v.problem.id: v.difficulty for v in tree}
    assert all(v.difficulty <= difficulty[v.parent_id] for v in tree)
    assert max(v.depth for v in tree) == 2
    assert [v.problem.text for v in variant_tree(task, root, depth=2, width=4, seed=1)] == [v.problem.text for v in tree]

    # JSONL round trip, and the file is a valid problems file too
    path = tmp_path / "tree.jsonl"
    save_tree(path, tree)
    assert load_tree(path) == tree
    from rungs.data import load_problems

    assert [p.text for p in load_problems(path)] == [v.problem.text for v in tree]
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert set(rows[0]) >= {"id", "problem", "answer", "difficulty", "transform", "parent_id", "depth", "root_id"}

    text = render_tree(tree, root=root)
    assert text.splitlines()[0] == f"root: {root.text}"
    assert any(line.startswith("    - [") for line in text.splitlines())  # a depth-2 line


def test_load_tree_errors_name_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "a", "problem": "integrate(x, x)"}\n')
    with pytest.raises(UserError, match=r"bad\.jsonl:1: missing field"):
        load_tree(path)
    with pytest.raises(UserError, match="no such variants file"):
        load_tree(tmp_path / "missing.jsonl")


# ---- commands ------------------------------------------------------------------------------------


def test_cli_variants_text_and_json(capsys, tmp_path):
    problem = "integrate(x*log(x) + 3*x*cos(x**2), x)"
    assert main(["variants", "--task", "integration", "--problem", problem, "--depth", "2", "--width", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"root: {problem}") and "  - [" in out
    out_file = tmp_path / "t.jsonl"
    assert main(["variants", "--task", "integration", "--problem", problem, "--json", "--out", str(out_file)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows and all(r["root_id"] == "root" for r in rows)
    assert [v.problem.text for v in load_tree(out_file)] == [r["problem"] for r in rows]


def test_cli_variants_without_symbolic_maker(capsys, monkeypatch):
    import rungs.tasks

    monkeypatch.setattr(rungs.tasks, "get_task", lambda name, **kw: type("Plain", (_ToyTask,), {"variants": Task.variants})())
    assert main(["variants", "--task", "toy", "--problem", "5"]) == 2
    err = capsys.readouterr().err.strip()
    assert "has no symbolic variant maker" in err and len(err.splitlines()) == 1


def test_cli_sample_problems(capsys, tmp_path):
    assert main(["sample-problems", "--task", "integration", "--n", "5", "--difficulty", "3", "--seed", "4"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 5 and all(set(r) == {"id", "problem", "answer", "meta"} for r in rows)
    assert [r["problem"] for r in rows] == [p.text for p in generate_problems(5, 3.0, seed=4)]
    out = tmp_path / "p.jsonl"
    assert main(["sample-problems", "--task", "countdown", "--n", "3", "--difficulty", "2", "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 3
    assert main(["sample-problems", "--task", "integration", "--n", "-2"]) == 2
    assert "--n must be >= 1" in capsys.readouterr().err
    assert main(["sample-problems", "--task", "integration", "--n", "0"]) == 2  # an empty file is a mistake, not a result
    assert "--n must be >= 1, got 0" in capsys.readouterr().err
    assert main(["sample-problems", "--task", "countdown", "--n", "2", "--difficulty", "99", "--out", str(out)]) == 0
    assert "warning: --difficulty 99 is outside countdown's levels; the problems are at level 5" in capsys.readouterr().err
    assert main(["sample-problems", "--task", "countdown", "--n", "4", "--difficulty", "4.5", "--out", str(out)]) == 0
    assert "warning" not in capsys.readouterr().err


def test_sample_problems_warns_when_a_level_runs_out_of_distinct_problems(capsys):
    """Integration's level 1 has 144 problems: 150 of them repeat some, which said nothing (s35 M7)."""
    assert main(["sample-problems", "--task", "integration", "--n", "150", "--difficulty", "1"]) == 0
    captured = capsys.readouterr()
    distinct = len({json.loads(line)["problem"] for line in captured.out.splitlines()})
    assert distinct < 150
    assert captured.err == (f"rungs sample-problems: warning: only {distinct} distinct integration problems among the 150 "
                            "at difficulty 1; the rest repeat (ask for fewer, or a higher --difficulty)\n")


def test_countdown_says_how_many_distinct_problems_it_found_when_it_cannot_make_n():
    from rungs.tasks.countdown import CountdownTask

    task = CountdownTask(max_target=2)  # few level-1 targets: the level runs out quickly
    with pytest.raises(RuntimeError, match=r"could not generate 40 distinct problems of difficulty 1: found (\d+) ") as info:
        task.generate(40, 1)
    found = int(str(info.value).split("found ")[1].split()[0])
    assert f"expected at most {found}, or a higher difficulty" in str(info.value)
    assert len(task.generate(found, 1)) == found


def test_variant_transforms_pick_the_tasks_own_and_refuse_what_it_lacks():
    from rungs.pipelines.ttrl import TTRLConfig, make_variant_maker

    countdown = get_task("countdown")
    maker = make_variant_maker(TTRLConfig(task="countdown"), countdown, None, ["smaller_numbers"])
    parent = countdown.generate(1, 4, seed=0)[0]
    made = maker(parent, 4, random.Random(0))
    assert made and {v.transform for v in made} == {"smaller_numbers"}
    assert make_variant_maker(TTRLConfig(task="countdown"), countdown, None) == countdown.variants  # default set
    with pytest.raises(UserError, match="--variant-transforms 'smaller': task 'countdown' has smaller_numbers, "):
        make_variant_maker(TTRLConfig(task="countdown"), countdown, None, ["smaller"])
    with pytest.raises(UserError, match="task 'integration' offers no choice of symbolic variant transforms"):
        make_variant_maker(TTRLConfig(task="integration"), get_task("integration"), None, ["smaller_numbers"])


def test_rungs_ladder_takes_variant_transforms_as_a_comma_separated_flag():
    from rungs.cli import build_parser
    from rungs.commands.ttrl import resolve
    from rungs.pipelines.ladder import LadderConfig

    parser, _ = build_parser()
    args = parser.parse_args(["ladder", "--task", "countdown", "--variant-transforms", "smaller_numbers,merge_numbers"])
    config, _, _ = resolve(args, "ladder", LadderConfig)
    assert config.variant_transforms == ["smaller_numbers", "merge_numbers"]
    config, _, _ = resolve(parser.parse_args(["ladder", "--task", "countdown"]), "ladder", LadderConfig)
    assert config.variant_transforms == []
