"""rungs: make a language model better at problems a program can verify, with no labels.

The layers, in the order data flows through them:

    problems (JSONL / parquet / HF datasets) -> Task -> Policy (via a Strategy)
        -> Task.verify (sandboxed pool) -> rewards -> Trainer (GRPO) -> run directory -> report
"""

from rungs.types import Completion, Problem, Rollout, Status, Verdict

__version__ = "0.1.0"
__all__ = ["Completion", "Problem", "Rollout", "Status", "Verdict", "__version__"]
