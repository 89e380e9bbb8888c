"""Policies: the embedded tiny model, any Hugging Face causal LM, any OpenAI-compatible server.

`load_policy("tiny")`, `load_policy("tiny:integration")`, `load_policy("hf:Qwen/Qwen2.5-0.5B-Instruct")`,
`load_policy("openai:http://localhost:8000/v1", model="NAME")`, `load_policy("vllm:MODEL")`.
"""

from __future__ import annotations

from typing import Any

from rungs.policies.base import LogProbs, Policy, SamplingParams
from rungs.registry import Registry, build

POLICIES: Registry[Any] = Registry("policy")
POLICIES.register("tiny", "rungs.policies.tiny:TinyPolicy.from_spec")
POLICIES.register("hf", "rungs.policies.hf:HFPolicy.from_spec")
POLICIES.register("openai", "rungs.policies.openai_api:OpenAIPolicy.from_spec")
POLICIES.register("vllm", "rungs.policies.vllm_engine:VLLMPolicy.from_spec")


def load_policy(spec: str, **kwargs: Any) -> Policy:
    """Build a policy from 'name' or 'name:arg' (see the module docstring)."""
    return build(POLICIES, spec, **kwargs)


__all__ = ["POLICIES", "LogProbs", "Policy", "SamplingParams", "load_policy"]
