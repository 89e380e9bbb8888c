"""Write a rungs problem set as veRL parquet (the layout of veRL's examples/data_preprocess).

    python examples/verl/make_parquet.py --task countdown --problems builtin:countdown-train --out data/countdown-train.parquet
    python examples/verl/make_parquet.py --task math --problems my.jsonl --out data/ttrl.parquet --no-labels

One row per problem: `data_source` (the task name: rungs' `compute_score` picks the task from it),
`prompt` (a chat: the task's own instruction), `ability`, `reward_model.ground_truth` and
`extra_info` ({"split", "index", "id", "problem"}). The ground truth follows rungs' convention:
for math the reference answer; integration and countdown verify themselves, so theirs is the
problem (countdown: TinyZero's {"target", "numbers"} dict). `--no-labels` leaves math answers out
(test-time RL with `compute_score_vote_batch`: the majority vote is the label). `extra_info.index`
is what `compute_score_vote_batch` groups the `rollout.n` responses of a prompt by.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def rows_for(task_name: str, problems_source: str, split: str = "train", labels: bool = True) -> list[dict]:
    """veRL rows for a problem set (see the module docstring). A row the task cannot read is skipped
    with one line `FILE:LINE: skipped: REASON` on stderr, as rungs' jobs skip it."""
    from rungs.data import load_task_problems
    from rungs.tasks import get_task

    task = get_task(task_name)
    rows = []
    for i, p in enumerate(load_task_problems(problems_source, task)):
        if task.name == "countdown":
            from rungs.tasks.countdown import parse_spec

            numbers, target = parse_spec(p)
            truth: object = {"target": target, "numbers": numbers}
        elif task.needs_answer:
            truth = p.answer if labels else None
        else:
            truth = p.text
        rows.append({"data_source": task.name, "prompt": [{"role": "user", "content": task.prompt(p, "instruct")}],
                     "ability": "math", "reward_model": {"style": "rule", "ground_truth": truth},
                     "extra_info": {"split": split, "index": i, "id": p.id, "problem": p.text}})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="integration", help="integration | countdown | math | arc")
    parser.add_argument("--problems", default="builtin:integration-train", help="a problem file or builtin:NAME")
    parser.add_argument("--split", default="train")
    parser.add_argument("--no-labels", action="store_true", help="leave math answers out (label-free TTRL)")
    parser.add_argument("--out", required=True, help="a .parquet file")
    args = parser.parse_args()

    import pandas as pd

    from rungs.errors import UserError

    try:
        rows = rows_for(args.task, args.problems, args.split, labels=not args.no_labels)
    except UserError as err:  # an unknown task, a missing or malformed file: one line, as rungs' commands say it
        raise SystemExit(f"make_parquet: error: {err}") from None
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(args.out)  # as veRL's preprocessors write it
    print(f"wrote {len(rows)} rows to {args.out}")
    unlabelled = sum(row["reward_model"]["ground_truth"] is None for row in rows)
    if unlabelled and not args.no_labels:
        print(f"make_parquet: warning: {unlabelled} of {len(rows)} rows have no answer; compute_score scores them 0 "
              "(label-free training: --no-labels and compute_score_vote_batch)")


if __name__ == "__main__":
    main()
