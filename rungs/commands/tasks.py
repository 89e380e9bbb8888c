"""List the tasks rungs knows, one line each."""

from __future__ import annotations

import argparse

HELP = "list the tasks, one line each"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    from rungs.tasks import TASKS

    width = max(len(n) for n in TASKS.names())
    for name in TASKS.names():
        task = TASKS.get(name)
        print(f"{name:<{width}}  {task.description}")
    return 0
