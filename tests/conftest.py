"""Shared fixtures: paths, the external data set, and a guard that nothing touches the network."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

# Tests build tiny models and tokenizers locally; nothing may reach a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def load_bench() -> Callable[[str], ModuleType]:
    """`load_bench("learning")`: bench/learning.py as a module (each bench script puts bench/ on
    sys.path when loaded, so the ones that import each other, `learning` and the rest, resolve)."""

    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO_ROOT / "bench" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the checkout; tests that need it skip cleanly when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"external data not found at {SHARED_DATA} (../shared is absent)")
    return SHARED_DATA


def pytest_configure(config: pytest.Config) -> None:
    # The suite runs beside verifier worker processes on small CI machines (2 cores): one torch
    # thread avoids oversubscription, which slows the tiny models' tests several times over.
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)
