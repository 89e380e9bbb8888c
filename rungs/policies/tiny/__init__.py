"""The embedded tiny model: a few-MB character-level transformer that trains and runs on a CPU."""

from rungs.policies.tiny.model import TinyConfig, TinyTransformer
from rungs.policies.tiny.policy import TinyPolicy
from rungs.policies.tiny.tokenizer import CharTokenizer

__all__ = ["CharTokenizer", "TinyConfig", "TinyPolicy", "TinyTransformer"]
