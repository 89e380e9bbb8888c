"""Test-time training on ARC: augmentations invert, leave-one-out data, the vote, fine-tune + rollback."""

from __future__ import annotations

import random

import pytest
import torch

from rungs.pipelines.ttrl import rolled_back
from rungs.pipelines.ttt import TTTConfig, encode_targets, fine_tune, predict, run_ttt, solve_problem
from rungs.policies.base import Policy, SamplingParams
from rungs.policies.tiny import TinyPolicy
from rungs.tasks import get_task
from rungs.tasks.arc import ArcSpec, answer_text, compact_prompt, parse_spec
from rungs.tasks.arc.augment import (
    DIHEDRAL,
    IDENTITY,
    Augmentation,
    augmentations,
    augmented_loo_tasks,
    dihedral,
    loo_tasks,
    random_colours,
    random_order,
)
from rungs.tasks.arc.grid import format_grid, grid_from_key, grid_key
from rungs.tasks.arc.vote import flat_vote, hierarchical_vote
from rungs.types import Completion, Problem, Verdict

G = ((0, 1, 2), (3, 4, 5))  # 2x3, all cells distinct: any wrong symmetry shows
SPEC = ArcSpec(((((1, 2),), ((3, 0),)), (((5,),), ((6,),)), (((7, 0, 7),), ((8, 0, 8),))), G)


@pytest.fixture(scope="module")
def task():
    return get_task("arc")


def copy_problem(pid: str = "copy") -> Problem:
    """A task whose rule is 'output = input' (invariant under every augmentation)."""
    grids = [((1, 2), (3, 0)), ((0, 5), (5, 0)), ((6, 0), (0, 7))]
    spec = ArcSpec(tuple((g, g) for g in grids), ((2, 0), (0, 3)))
    return Problem(pid, compact_prompt(spec), "20\n03")


# -- augmentations ---------------------------------------------------------------------------------


def test_the_eight_symmetries_are_distinct_and_invert_exactly():
    images = {name: dihedral(name, G) for name in DIHEDRAL}
    assert len(set(images.values())) == 8
    assert images["rot90"] == ((3, 0), (4, 1), (5, 2))  # clockwise
    assert images["transpose"] == ((0, 3), (1, 4), (2, 5))
    for name in DIHEDRAL:
        aug = Augmentation(name)
        assert aug.invert_grid(aug.apply_grid(G)) == G
        assert aug.apply_grid(aug.invert_grid(G)) == G


def test_every_augmentation_round_trips_on_grids_and_tasks():
    rng = random.Random(0)
    for name in DIHEDRAL:
        for _ in range(5):
            aug = Augmentation(name, random_colours(rng), random_order(len(SPEC.train), rng))
            assert aug.invert(aug.apply(SPEC)) == SPEC
            assert aug.invert_grid(aug.apply_grid(G)) == G
            assert aug.apply_grid(((0, 0),)) == dihedral(name, ((0, 0),))  # background stays 0


def test_colour_and_order_augmentations_do_what_they_say():
    colours = (0, 2, 1, 3, 4, 5, 6, 7, 8, 9)  # swap 1 and 2
    aug = Augmentation("identity", colours, (2, 0, 1))
    out = aug.apply(SPEC)
    assert out.train[0] == SPEC.train[2] and out.train[1][0] == ((2, 1),)
    assert out.test_input == ((0, 2, 1), (3, 4, 5))
    with pytest.raises(ValueError):
        Augmentation("identity", (1, 0, 2, 3, 4, 5, 6, 7, 8, 9))  # moves the background


def test_augmentation_lists_start_with_the_symmetries_and_are_distinct():
    augs = augmentations(20, 3, random.Random(1))
    assert [a.geometry for a in augs[:8]] == list(DIHEDRAL) and augs[0] == IDENTITY
    assert len(set(augs)) == 20 and all(a.colours is not None for a in augs[8:])
    assert augmentations(1, 3, random.Random(1)) == [IDENTITY]


# -- leave-one-out data ----------------------------------------------------------------------------


def test_leave_one_out_tasks_hold_out_each_demo_in_turn():
    tasks = loo_tasks(SPEC)
    assert len(tasks) == 3
    for i, (spec, target) in enumerate(tasks):
        assert spec.test_input == SPEC.train[i][0] and target == SPEC.train[i][1]
        assert spec.train == tuple(p for j, p in enumerate(SPEC.train) if j != i)  # the others, in order
    assert loo_tasks(ArcSpec(SPEC.train[:1], G)) == []  # one demo: nothing to hold out


def test_augmented_loo_tasks_are_loo_tasks_times_augmentations():
    rows = augmented_loo_tasks(SPEC, 4, random.Random(0))
    assert len(rows) == 3 * (1 + 4)
    plain = [(s, t) for s, t, name in rows if name == IDENTITY.name]
    assert plain == loo_tasks(SPEC)
    for spec, target, _name in rows:
        assert len(spec.train) == 2
        # each augmented example is a LOO task under a bijection: same multiset of grid sizes
        assert sorted(len(r) * len(r[0]) for r in (target, spec.test_input)) in (
            sorted(len(r) * len(r[0]) for r in (t, s.test_input)) for s, t in loo_tasks(SPEC))
    assert augmented_loo_tasks(SPEC, 0, random.Random(0)) == [(s, t, IDENTITY.name) for s, t in loo_tasks(SPEC)]


# -- voting ------------------------------------------------------------------------------------------


def test_hierarchical_vote_counts_transformations_not_raw_votes():
    X, Y, Z = "1|2", "3|4", "5|6"
    preds = [("identity", X)] * 5 + [("rot90", Y), ("flip_lr", Y), ("transpose", Y), ("rot180", Z), ("rot180", None)]
    assert flat_vote(preds) == [X, Y]
    assert hierarchical_vote(preds) == [Y, X]  # three symmetries kept Y, one kept X
    assert hierarchical_vote(preds, top=1) == [Y]
    assert hierarchical_vote([("identity", None)]) == []


class ScriptedPolicy(Policy):
    """Answers prompt i of each call with script[i] (an answer in the augmented frame, or text)."""

    name = "scripted"
    prompt_style = "compact"

    def __init__(self, script):
        self.script = script
        self.prompts: list[str] = []

    def generate(self, prompts, n=1, sampling=None):
        self.prompts += list(prompts)
        return [[Completion(self.script(i, p))] for i, p in enumerate(prompts)]


def test_vote_picks_the_expected_grid_from_a_scripted_policy(task):
    problem = copy_problem()
    spec = parse_spec(problem)
    augs = augmentations(8, len(spec.train), random.Random(0))
    wrong = ((9, 9), (9, 9))

    def script(i, prompt):
        query = parse_spec(Problem("x", prompt)).test_input  # the augmented test input
        if i in (0, 4):  # identity and one other symmetry answer a wrong grid
            return answer_text(wrong)
        if i == 5:
            return "<answer>12\n3</answer>"  # ragged: no vote
        return answer_text(query)  # the copy rule, in the augmented frame

    policy = ScriptedPolicy(script)
    preds, skipped = predict(policy, task, spec, augs, max_new_tokens=16)
    assert skipped == 0 and len(policy.prompts) == 8
    assert [p.status for p in preds].count("unparseable") == 1
    top = hierarchical_vote([(p.geometry, p.grid) for p in preds])
    assert [grid_from_key(k) for k in top] == [spec.test_input, wrong]  # mapped back, right one first
    assert preds[0].grid == grid_key(wrong)  # the identity prediction alone was wrong


class RecordingPool:
    def verify(self, problems, completions):
        return [get_task("arc").verify(p, c) for p, c in zip(problems, completions)]


def test_solve_problem_with_a_scripted_policy_reports_pass_at_2(task):
    problem = copy_problem()

    def script(i, prompt):
        return answer_text(((9,),)) if i == 0 else answer_text(parse_spec(Problem("x", prompt)).test_input)

    config = TTTConfig(steps=0, infer_augmentations=8)
    out = solve_problem(config, ScriptedPolicy(script), task, RecordingPool(), problem)
    assert out.solved and out.top1 and not out.greedy
    assert out.statuses == ["correct", "wrong"] and out.steps == 0


# -- fine-tuning and rollback ---------------------------------------------------------------------------


def small_policy(task, seed=0):
    return TinyPolicy.new(alphabets=[task.alphabet], seed=seed, d_model=32, n_layers=1, n_heads=2, mlp_hidden=64, max_seq_len=128)


def state(policy):
    return {k: v.clone() for k, v in policy.model.state_dict().items()}


def test_fine_tune_changes_the_weights_and_rollback_restores_them_bitwise(task):
    policy = small_policy(task)
    before = state(policy)
    rows = augmented_loo_tasks(parse_spec(copy_problem()), 2, random.Random(0))
    prompts = policy.encode_prompts([compact_prompt(s) for s, _, _ in rows])
    targets = encode_targets(policy, [answer_text(t) for _, t, _ in rows])
    assert targets[0][-1] == policy.tokenizer.eos_id
    with rolled_back(policy):
        losses = fine_tune(policy, prompts, targets, steps=3, batch_size=4, learning_rate=1e-2, rng=random.Random(0))
        during = state(policy)
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert any(not torch.equal(before[k], during[k]) for k in before)  # trained
    after = state(policy)
    assert all(torch.equal(before[k], after[k]) for k in before)  # rolled back exactly
    assert not policy.model.training


def test_rollback_also_happens_when_training_raises(task):
    policy = small_policy(task)
    before = state(policy)
    with pytest.raises(RuntimeError), rolled_back(policy):
        with torch.no_grad():
            next(iter(policy.parameters())).add_(1.0)
        raise RuntimeError("boom")
    assert all(torch.equal(before[k], v) for k, v in state(policy).items())


def test_run_ttt_trains_per_problem_writes_a_run_and_leaves_the_weights(tmp_path, task):
    policy = small_policy(task)
    before = state(policy)
    problems = [copy_problem("a"), copy_problem("b")]
    config = TTTConfig(steps=2, batch_size=4, train_augmentations=1, infer_augmentations=3, max_new_tokens=8,
                       out=str(tmp_path / "run"))
    summary = run_ttt(config, policy=policy, task=task, pool=RecordingPool(), echo=False, problems=problems)
    assert summary["problems"] == 2 and summary["problems_trained"] == 2
    assert all(torch.equal(before[k], v) for k, v in state(policy).items())
    for name in ("config.yaml", "outcomes.jsonl", "summary.json", "ttt.png"):
        assert (tmp_path / "run" / name).exists()
    # resume: nothing left to do, same summary
    again = run_ttt(config, resume_dir=str(tmp_path / "run"), policy=policy, task=task, pool=RecordingPool(),
                    echo=False, problems=problems)
    assert again["pass@2"] == summary["pass@2"] and again["problems"] == 2


def test_hf_policy_without_lora_is_refused(task):
    from rungs.errors import UserError
    from rungs.pipelines.ttt import check_trainable

    class FakeHF(ScriptedPolicy):
        trainable = True
        lora = False

    with pytest.raises(UserError, match="lora_rank"):
        check_trainable(FakeHF(None), TTTConfig(policy="hf:x"))
    check_trainable(FakeHF(None), TTTConfig(policy="hf:x", steps=0))  # no training, no adapter needed


def test_format_used_by_training_matches_what_the_task_verifies(task):
    grid = ((1, 0), (0, 2))
    p = Problem("t", compact_prompt(SPEC), format_grid(grid))
    assert task.verify(p, answer_text(grid)).correct and task.verify(p, answer_text(grid, "spaced")).correct
    assert isinstance(task.verify(p, "<answer>1</answer>"), Verdict)
    assert SamplingParams(temperature=0.0).greedy


def test_hf_ttt_trains_a_lora_adapter_and_rolls_it_back(tmp_path, task):
    pytest.importorskip("transformers")
    pytest.importorskip("peft")
    from _hf_tiny import make_tiny_hf

    from rungs.policies import load_policy

    policy = load_policy(f"hf:{make_tiny_hf(tmp_path / 'm')}", device="cpu", dtype="float32", lora_rank=4, seed=0)
    spec = ArcSpec(((((1, 0),), ((0, 1),)), (((2, 0),), ((0, 2),))), ((3, 0),))  # swap the two cells
    problem = Problem("hf", compact_prompt(spec), "03")
    before = policy.snapshot()
    rows = augmented_loo_tasks(spec, 1, random.Random(0))
    prompts = policy.encode_prompts([task.format_prompt(s, "instruct") for s, _, _ in rows])
    targets = encode_targets(policy, [answer_text(t, "spaced") for _, t, _ in rows])
    assert targets[0][-1] in policy.eos_token_ids
    with rolled_back(policy):
        fine_tune(policy, prompts, targets, steps=2, batch_size=2, learning_rate=1e-2, rng=random.Random(0))
        assert any(not torch.equal(before[k], v) for k, v in policy.snapshot().items())  # the adapter moved
    assert all(torch.equal(before[k], v) for k, v in policy.snapshot().items())
    config = TTTConfig(policy="hf", steps=1, batch_size=2, train_augmentations=1, infer_augmentations=2, max_new_tokens=6)
    out = solve_problem(config, policy, task, RecordingPool(), problem)
    assert out.steps == 1 and out.train_examples == 4 and out.predictions == 2
    assert all(torch.equal(before[k], v) for k, v in policy.snapshot().items())


# -- MARC's demonstration loss ----------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["compact", "instruct"])
def test_output_spans_are_the_demonstration_outputs_of_the_same_prompt(style):
    from rungs.tasks.arc import instruct_prompt, prompt_with_output_spans

    text, spans = prompt_with_output_spans(SPEC, style)
    assert text == (compact_prompt(SPEC) if style == "compact" else instruct_prompt(SPEC))
    cells = "compact" if style == "compact" else "spaced"
    assert [text[a:b] for a, b in spans] == [format_grid(o, cells) + "\n" for _, o in SPEC.train]
    assert text.count(format_grid(SPEC.test_input, cells)) == 1  # the query's input is not an output


def marked_text(policy, ids, mask):
    return "".join(policy.decode([t]) for t, m in zip(ids, mask) if m)


def test_demo_loss_masks_mark_exactly_the_output_tokens_of_the_tiny_model(task):
    from rungs.pipelines.ttt import demo_loss_masks
    from rungs.tasks.arc import prompt_with_output_spans

    policy = small_policy(task)
    text, spans = prompt_with_output_spans(SPEC, "compact")
    ids = policy.encode_prompts([text])
    (mask,) = demo_loss_masks(policy, [text], [spans], ids)
    assert len(mask) == len(ids[0]) and not mask[0]  # <bos> is never trained
    assert marked_text(policy, ids[0], mask) == "".join(format_grid(o) + "\n" for _, o in SPEC.train)
    # A prompt longer than the context keeps its end: the marks follow the characters that remain.
    short = TinyPolicy.new(alphabets=[task.alphabet], seed=0, d_model=16, n_layers=1, n_heads=2, mlp_hidden=32,
                           max_seq_len=20)
    ids = short.encode_prompts([text])
    (mask,) = demo_loss_masks(short, [text], [spans], ids)
    kept = text[len(text) - (len(ids[0]) - 1):]
    start = len(text) - len(kept)
    want = "".join(text[max(a, start):b] for a, b in spans if b > start)
    assert marked_text(short, ids[0], mask) == want and want


def test_demo_loss_masks_mark_the_output_tokens_of_an_hf_chat_model(tmp_path, task):
    pytest.importorskip("transformers")
    from _hf_tiny import make_tiny_hf

    from rungs.pipelines.ttt import demo_loss_masks
    from rungs.policies import load_policy
    from rungs.tasks.arc import prompt_with_output_spans

    policy = load_policy(f"hf:{make_tiny_hf(tmp_path / 'm')}", device="cpu", dtype="float32", seed=0)
    text, spans = prompt_with_output_spans(SPEC, "instruct")
    ids = policy.encode_prompts([text])
    (mask,) = demo_loss_masks(policy, [text], [spans], ids)
    assert len(mask) == len(ids[0])
    # one character a token; this test tokenizer reads "\n" as <unk> (its split regex skips newlines)
    pieces = [p.replace("<unk>", "\n") for p in policy.tokenizer.convert_ids_to_tokens(ids[0])]
    assert "".join(p for p, m in zip(pieces, mask) if m) == "".join(format_grid(o, "spaced") + "\n" for _, o in SPEC.train)


def test_sft_loss_trains_the_marked_prompt_tokens_and_only_those(task):
    from rungs.train.sft import sft_loss

    policy = small_policy(task)
    prompts = policy.encode_prompts([compact_prompt(SPEC)])
    targets = encode_targets(policy, [answer_text(G)])
    plain = sft_loss(policy, prompts, targets)
    none_marked = sft_loss(policy, prompts, targets, [[False] * len(prompts[0])])
    assert torch.allclose(plain, none_marked, atol=1e-6)  # no marks: the answer alone
    # Marking token j adds the NLL of token j given the tokens before it to the mean.
    j = len(prompts[0]) - 3
    marked = [False] * len(prompts[0])
    marked[j] = True
    lp_answer = policy.logprobs(prompts, targets).logprobs[0, :len(targets[0])]
    lp_j = policy.logprobs([prompts[0][:j]], [[prompts[0][j]]]).logprobs[0, 0]
    want = -(lp_answer.sum() + lp_j) / (len(targets[0]) + 1)
    assert torch.allclose(sft_loss(policy, prompts, targets, [marked]), want, atol=1e-5)
    with pytest.raises(ValueError, match="entries for a prompt of"):
        sft_loss(policy, prompts, targets, [[True]])


def test_demo_loss_teaches_the_demonstration_outputs_that_the_answer_loss_does_not(task):
    from rungs.pipelines.ttt import demo_loss_masks
    from rungs.tasks.arc import prompt_with_output_spans
    from rungs.train.sft import sft_loss

    rows = augmented_loo_tasks(SPEC, 2, random.Random(0))
    texts, spans = zip(*(prompt_with_output_spans(s, "compact") for s, _, _ in rows))

    def demo_nll_after(demo_loss):
        policy = small_policy(task, seed=1)
        prompts = policy.encode_prompts(list(texts))
        targets = encode_targets(policy, [answer_text(t) for _, t, _ in rows])
        masks = demo_loss_masks(policy, texts, spans, prompts)
        fine_tune(policy, prompts, targets, steps=12, batch_size=4, learning_rate=1e-2, rng=random.Random(0),
                  prompt_loss_masks=masks if demo_loss else None)
        no_answer = [[] for _ in prompts]  # the demonstration outputs alone
        with torch.no_grad():
            return float(sft_loss(policy, prompts, no_answer, masks))

    assert demo_nll_after(True) < demo_nll_after(False) - 0.1


def test_ttt_trains_with_the_demo_loss_by_default_and_without_it_on_request(task):
    from rungs.cli import build_parser
    from rungs.config import from_sections

    parser, _ = build_parser()
    assert from_sections(parser.parse_args(["ttt"]), {"ttt": TTTConfig}, None)["ttt"].demo_loss is True
    assert from_sections(parser.parse_args(["ttt", "--no-demo-loss"]), {"ttt": TTTConfig}, None)["ttt"].demo_loss is False
    losses = {}
    for demo_loss in (True, False):
        config = TTTConfig(steps=1, batch_size=4, train_augmentations=1, infer_augmentations=1, max_new_tokens=4,
                           demo_loss=demo_loss)
        losses[demo_loss] = solve_problem(config, small_policy(task), task, RecordingPool(), copy_problem()).loss_first
    assert losses[True] != pytest.approx(losses[False])  # the first step's loss covers other tokens


@pytest.mark.parametrize(("stored", "want"), [("", False), ("  demo_loss: true\n", True), ("  demo_loss: false\n", False)])
def test_a_resumed_ttt_run_keeps_the_loss_it_was_started_with(tmp_path, monkeypatch, stored, want):
    """A run written before the demonstration loss existed has no demo_loss in its config.yaml: it
    trained the answer alone, and resuming it must not switch to the new default."""
    import rungs.pipelines.ttt as ttt
    from rungs.cli import main

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(f"ttt:\n  task: arc\n  steps: 1\n{stored}")
    seen = []
    monkeypatch.setattr(ttt, "run_ttt", lambda config, **kw: seen.append(config) or {})
    assert main(["ttt", "--resume", str(run)]) == 0
    assert seen[0].demo_loss is want


def test_a_resumed_ttt_run_refuses_changed_settings(tmp_path, monkeypatch, capsys):
    import rungs.pipelines.ttt as ttt
    from rungs.cli import main

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("ttt:\n  task: arc\n  steps: 16\n  demo_loss: true\n")
    seen = []
    monkeypatch.setattr(ttt, "run_ttt", lambda config, **kw: seen.append(config) or {})
    assert main(["ttt", "--resume", str(run), "--steps", "2"]) == 2
    assert "steps=16" in capsys.readouterr().err and not seen  # refused before anything runs
    assert main(["ttt", "--resume", str(run), "--steps", "16"]) == 0 and seen[0].steps == 16  # the same value is fine
