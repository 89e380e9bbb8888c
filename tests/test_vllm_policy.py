"""The vllm policy without vllm installed: a one-line message that says how to get it."""

from __future__ import annotations

import importlib.util

import pytest

from rungs.errors import UserError
from rungs.policies import load_policy


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed")
def test_missing_vllm_is_a_one_line_user_error():
    with pytest.raises(UserError) as info:
        load_policy("vllm:Qwen/Qwen2.5-0.5B-Instruct")
    assert str(info.value) == "the vllm policy needs vllm: pip install vllm (GPU only)"
