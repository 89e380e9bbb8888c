"""Use a rungs verifier as veRL's reward, and write a rungs problem set as veRL parquet.

veRL's config points at this file's `compute_score` (it re-exports rungs' sandboxed one):

    custom_reward_function:
      path: examples/verl_reward.py
      name: compute_score

`compute_score(data_source, solution_str, ground_truth, extra_info=None)` picks the task from
`data_source` ("integration", "countdown", "math"). For math, `ground_truth` is the reference
answer; integration and countdown verify themselves, so their `ground_truth` carries the problem.

    python examples/verl_reward.py --task integration --problems builtin:integration-train --out train.parquet
"""

from __future__ import annotations

import argparse

from rungs.integrations import compute_score

__all__ = ["compute_score"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="integration")
    parser.add_argument("--problems", default="builtin:integration-train")
    parser.add_argument("--out", required=True, help="a .parquet file")
    args = parser.parse_args()

    import pyarrow as pa
    import pyarrow.parquet as pq

    from rungs.data import load_problems
    from rungs.tasks import get_task

    task = get_task(args.task)
    rows = []
    for i, p in enumerate(load_problems(args.problems)):
        truth = p.answer if task.needs_answer else p.text
        rows.append({"data_source": task.name, "prompt": [{"role": "user", "content": task.prompt(p, "instruct")}],
                     "ability": "math", "reward_model": {"style": "rule", "ground_truth": truth},
                     "extra_info": {"index": i, "id": p.id, "problem": p.text}})
    pq.write_table(pa.Table.from_pylist(rows), args.out)
    print(f"wrote {len(rows)} rows to {args.out}")


if __name__ == "__main__":
    main()
