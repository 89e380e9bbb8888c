"""vLLM's offline engine as a policy, for GPU users who want fast sampling in-process.

`load_policy("vllm:Qwen/Qwen2.5-7B-Instruct", gpu_memory_utilization=0.85)`. Inference only: the
sampling strategies (best-of-N, voting, evaluation) run on it, but it is not trainable — pushing
updated weights into the engine for RL (as TRL's and veRL's colocated vLLM do) is not implemented
yet; train with the `hf` policy. To use a vLLM server instead of an in-process engine, use the
`openai` policy (`openai:http://HOST:8000/v1`).

Prompts are formatted exactly as the `hf` policy formats them (the tokenizer's chat template with
a generation prompt, else the raw prompt) and handed to vLLM as token ids, so the two policies see
the same ids. Stop strings end the text before them, as everywhere in rungs. `Completion.logprobs`
are the log-probs vLLM reports for the sampled tokens (vLLM's default: of the raw model
distribution, before temperature and top-k/top-p). FIRE is not supported: warned about and ignored.

vllm is an optional dependency (GPU only): `pip install vllm`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from rungs.errors import UserError
from rungs.policies.base import Policy, SamplingParams
from rungs.types import Completion

log = logging.getLogger(__name__)

MISSING = "the vllm policy needs vllm: pip install vllm (GPU only)"


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError:
        raise UserError(MISSING) from None
    return vllm


class VLLMPolicy(Policy):
    """Sampling with `vllm.LLM`. Not trainable (weight sync for RL is not implemented yet)."""

    trainable = False
    prompt_style = "instruct"

    def __init__(
        self,
        model: str,
        *,
        dtype: str = "auto",
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        tensor_parallel_size: int = 1,
        seed: int = 0,
        trust_remote_code: bool = False,
    ) -> None:
        vllm = _import_vllm()
        self._vllm = vllm
        self.name = f"vllm:{model}"
        self._warned_fire = False
        try:
            self.llm = vllm.LLM(model=model, dtype=dtype, gpu_memory_utilization=gpu_memory_utilization,
                                max_model_len=max_model_len, tensor_parallel_size=tensor_parallel_size,
                                seed=seed, trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as err:
            raise UserError(f"vllm policy: cannot load model {model!r}: {str(err).strip().splitlines()[0]}") from None
        self.tokenizer = self.llm.get_tokenizer()

    @classmethod
    def from_spec(cls, arg: str | None, **kwargs: Any) -> VLLMPolicy:
        """`vllm:MODEL` (a hub name or local directory); `model=` may name it instead; `task=` is unused."""
        kwargs.pop("task", None)
        model = arg or kwargs.pop("model", None)
        kwargs.pop("model", None)
        _import_vllm()  # the missing-dependency message comes first
        if not model:
            raise UserError("vllm policy needs a model: vllm:PATH_OR_HUB_NAME")
        import inspect

        known = {k for k, v in inspect.signature(cls.__init__).parameters.items() if v.kind is v.KEYWORD_ONLY}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise UserError(f"vllm policy: unknown option {unknown[0]!r}; expected one of {', '.join(sorted(known))}")
        return cls(model, **kwargs)

    def encode_prompts(self, prompts: Sequence[str]) -> list[list[int]]:
        """The same ids the hf policy would use: chat template (its own special tokens) or raw + BOS."""
        chat = bool(getattr(self.tokenizer, "chat_template", None))
        out = []
        for p in prompts:
            text = (self.tokenizer.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True,
                                                       tokenize=False) if chat else p)
            out.append(list(self.tokenizer(text, add_special_tokens=not chat)["input_ids"]))
        return out

    def generate(self, prompts: Sequence[str], n: int = 1, sampling: SamplingParams | None = None) -> list[list[Completion]]:
        sp = sampling or SamplingParams()
        if (sp.first_token_temperature is not None or sp.first_token_top_k is not None) and not self._warned_fire:
            log.warning("vllm policy: FIRE (first_token_temperature/top_k) is not supported; ignored")
            self._warned_fire = True
        if not prompts:
            return []
        params = self._vllm.SamplingParams(
            n=n, temperature=sp.temperature, top_p=sp.top_p, top_k=sp.top_k if sp.top_k > 0 else -1,
            max_tokens=sp.max_new_tokens, stop=list(sp.stop) or None, seed=sp.seed, logprobs=0,
        )
        inputs = [{"prompt_token_ids": ids} for ids in self.encode_prompts(prompts)]
        results = self.llm.generate(inputs, params, use_tqdm=False)
        out = []
        for result in results:
            row = []
            for o in result.outputs:
                lps = None
                if o.logprobs is not None:
                    lps = [float(step[t].logprob) for step, t in zip(o.logprobs, o.token_ids)]
                finish = "length" if o.finish_reason == "length" else "stop"
                row.append(Completion(text=o.text, token_ids=list(o.token_ids), logprobs=lps, finish_reason=finish))
            out.append(row)
        return out
