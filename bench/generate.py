"""Sampling throughput and log-prob memory, each against its peer measured in the same run.

    python bench/generate.py            # about a minute or two on a laptop CPU
    python bench/generate.py --quick    # smaller sizes, for a smoke test

(a) Tokens per second of the tiny policy's KV-cache sampler (rungs/policies/tiny/sampling.py)
    against transformers' `generate` on a Llama of the same shape (d_model, layers, heads, MLP
    width, vocabulary, tied embeddings, float32) and the same batch (P prompts x n samples, plain
    temperature-1 sampling). End of sequence is switched off in both, so every row generates exactly
    max_new_tokens and both do the same number of steps. Goal: >= 3x transformers on CPU.

(b) Peak memory of the log-probs GRPO needs, for one 1024-token completion with a 151,936-token
    vocabulary (Qwen2.5's) and hidden size 896 (Qwen2.5-0.5B's): the naive way (full logits,
    float32 log_softmax, gather) against rungs' chunked selective log-softmax
    (rungs/policies/hf.py), forward + backward into the hidden states (the LoRA case: the LM head
    is frozen) and forward only (reference / old log-probs). Goal: <= 1/4 of the naive peak.
    How memory is measured: on a GPU, torch.cuda.max_memory_allocated in this process. On CPU,
    torch's allocations are invisible to tracemalloc, so each variant runs in a fresh subprocess
    that sets up its inputs, resets the kernel's peak-RSS counter (/proc/self/clear_refs, Linux),
    runs once, and reports peak RSS minus RSS before the run: the extra memory the computation
    needed at its worst moment, as the OS saw it (else ru_maxrss growth, which can only undercount).

Prints tables and ratios; asserts nothing (timings on a shared machine are noisy: rerun to see the
spread).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:  # bench_cli beside this file, also when loaded by path (the tests)
    sys.path.insert(0, HERE)
import bench_cli  # noqa: E402


# -- (a) sampling throughput -------------------------------------------------------------------------
def bench_sampling(prompts: int, n: int, prompt_len: int, new_tokens: int, repeats: int) -> dict[str, float]:
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    from rungs.policies.base import SamplingParams
    from rungs.policies.tiny.policy import TinyPolicy
    from rungs.policies.tiny.sampling import generate_ids

    tiny = TinyPolicy.new(seed=0)
    cfg = tiny.model.cfg
    llama = LlamaForCausalLM(LlamaConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.d_model, intermediate_size=cfg.mlp_hidden,
        num_hidden_layers=cfg.n_layers, num_attention_heads=cfg.n_heads, num_key_value_heads=cfg.n_heads,
        max_position_embeddings=cfg.max_seq_len, rope_theta=cfg.rope_theta, rms_norm_eps=cfg.norm_eps,
        tie_word_embeddings=True, attention_bias=False, mlp_bias=False,
    )).eval()
    print(f"model: d_model {cfg.d_model}, layers {cfg.n_layers}, heads {cfg.n_heads}, MLP {cfg.mlp_hidden}, "
          f"vocab {cfg.vocab_size}; tiny {tiny.model.num_parameters() / 1e6:.2f}M params, "
          f"Llama {sum(p.numel() for p in llama.parameters()) / 1e6:.2f}M params; float32, "
          f"{torch.get_num_threads()} threads")
    print(f"batch: {prompts} prompts x {n} samples, prompt {prompt_len} tokens, {new_tokens} new tokens each, "
          f"temperature 1, no end of sequence; best of {repeats}")

    g = torch.Generator().manual_seed(0)
    ids = torch.randint(4, cfg.vocab_size, (prompts, prompt_len), generator=g)  # [P, L], no special ids
    sp = SamplingParams(temperature=1.0, max_new_tokens=new_tokens)

    def run_tiny() -> int:
        samples = generate_ids(tiny.model, ids.tolist(), n, sp, eos_id=-1, pad_id=tiny.tokenizer.pad_id,
                               piece_text=tiny.tokenizer.piece_text, generator=torch.Generator().manual_seed(1))
        return sum(len(s.token_ids) for row in samples for s in row)

    gen_cfg = GenerationConfig(do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=new_tokens,
                               min_new_tokens=new_tokens, num_return_sequences=n, eos_token_id=None, pad_token_id=0)

    def run_hf() -> int:
        with torch.no_grad():
            out = llama.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=gen_cfg)
        return int(out[:, prompt_len:].numel())

    def best(fn) -> tuple[float, int]:
        fn()  # warm-up
        times, count = [], 0
        for _ in range(repeats):
            start = time.perf_counter()
            count = fn()
            times.append(time.perf_counter() - start)
        return min(times), count

    with torch.inference_mode():
        t_tiny, n_tiny = best(run_tiny)
    t_hf, n_hf = best(run_hf)
    rows = [("tiny KV-cache sampler", n_tiny, t_tiny), ("transformers generate", n_hf, t_hf)]
    print(f"\n{'sampler':<24}{'tokens':>9}{'seconds':>10}{'tokens/s':>11}")
    for name, count, secs in rows:
        print(f"{name:<24}{count:>9}{secs:>10.2f}{count / secs:>11.0f}")
    ratio = (n_tiny / t_tiny) / (n_hf / t_hf)
    print(f"ratio: tiny / transformers = {ratio:.2f}x (goal >= 3x on CPU)")
    return {"tiny_tok_s": n_tiny / t_tiny, "hf_tok_s": n_hf / t_hf, "ratio": ratio}


# -- (b) log-prob memory -----------------------------------------------------------------------------
def _logprob_case(variant: str, mode: str, tokens: int, hidden: int, vocab: int, device: str) -> float:
    """Run one variant once (inputs already built by the caller's process); returns seconds."""
    from rungs.policies.hf import chunk_size_for, naive_log_softmax, selective_log_softmax

    g = torch.Generator(device="cpu").manual_seed(0)
    head = torch.nn.Linear(hidden, vocab, bias=False).to(device)
    head.weight.requires_grad_(False)  # LoRA: the LM head is frozen
    h = (torch.randn(tokens, hidden, generator=g) * 0.5).to(device).requires_grad_(mode == "train")  # [T, H]
    targets = torch.randint(0, vocab, (tokens,), generator=g).to(device)  # [T]
    _sync(device)
    _reset_peak(device)
    start = time.perf_counter()
    with torch.set_grad_enabled(mode == "train"):
        if variant == "naive":
            lp = naive_log_softmax(head(h), targets)  # [T]; the [T, V] logits and log-softmax both live
        else:
            lp, _ = selective_log_softmax(h, head, targets, chunk_size=chunk_size_for(vocab))
        if mode == "train":
            lp.sum().backward()
    _sync(device)
    return time.perf_counter() - start


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(field)


_BASE: dict[str, int] = {}


def _reset_peak(device: str) -> None:
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        _BASE["bytes"] = torch.cuda.memory_allocated()
        return
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM (peak RSS) to the current RSS
        _BASE["kb"], _BASE["how"] = _rss_kb("VmRSS"), 1
    except OSError:
        _BASE["kb"], _BASE["how"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, 0


def _peak_mb(device: str) -> float:
    if device == "cuda":
        return (torch.cuda.max_memory_allocated() - _BASE["bytes"]) / 2**20
    peak = _rss_kb("VmHWM") if _BASE["how"] else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (peak - _BASE["kb"]) / 1024


def _child(argv: list[str]) -> None:
    variant, mode, tokens, hidden, vocab = argv[0], argv[1], int(argv[2]), int(argv[3]), int(argv[4])
    torch.set_num_threads(int(argv[5]))
    secs = _logprob_case(variant, mode, tokens, hidden, vocab, "cpu")
    print(json.dumps({"peak_mb": _peak_mb("cpu"), "seconds": secs}))


def bench_logprob_memory(tokens: int, hidden: int, vocab: int) -> dict[str, float]:
    from rungs.policies.hf import chunk_size_for

    device = "cuda" if torch.cuda.is_available() else "cpu"
    how = "torch.cuda.max_memory_allocated" if device == "cuda" else "peak RSS of a fresh subprocess per variant"
    print(f"\none completion of {tokens} tokens, hidden {hidden}, vocabulary {vocab}, float32 on {device}; "
          f"chunk {chunk_size_for(vocab)} tokens; memory: {how}")
    print(f"(the [T, V] float32 logits alone are {tokens * vocab * 4 / 2**20:.0f} MB)")
    results: dict[tuple[str, str], tuple[float, float]] = {}
    for mode in ("train", "no_grad"):
        for variant in ("naive", "chunked"):
            if device == "cuda":
                secs = _logprob_case(variant, mode, tokens, hidden, vocab, device)
                results[variant, mode] = (_peak_mb(device), secs)
                continue
            cmd = [sys.executable, os.path.abspath(__file__), "--child", variant, mode, str(tokens), str(hidden), str(vocab),
                   str(torch.get_num_threads())]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            results[variant, mode] = (row["peak_mb"], row["seconds"])
    print(f"\n{'log-probs':<26}{'naive MB':>10}{'chunked MB':>12}{'ratio':>8}{'naive s':>9}{'chunked s':>11}")
    ratios = {}
    for mode, label in (("train", "forward + backward"), ("no_grad", "forward, no grad")):
        (m_n, s_n), (m_c, s_c) = results["naive", mode], results["chunked", mode]
        ratios[mode] = m_c / m_n if m_n > 0 else float("nan")
        print(f"{label:<26}{m_n:>10.0f}{m_c:>12.0f}{ratios[mode]:>8.3f}{s_n:>9.2f}{s_c:>11.2f}")
    print(f"ratio chunked / naive peak memory: {ratios['train']:.3f} (train), {ratios['no_grad']:.3f} (no grad) "
          f"(goal <= 0.25)")
    return ratios


def main(argv: list[str] | None = None) -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke test, not a measurement)")
    parser.add_argument("--repeats", type=bench_cli.positive, default=3,
                        help="timed runs per sampler; the best is reported (default 3)")
    parser.add_argument("--threads", type=bench_cli.positive, default=None,
                        help="torch CPU threads (default: torch's choice; use 1 on a busy machine, where "
                             "OpenMP threads spinning for cores slow everything down)")
    parser.add_argument("--skip-memory", action="store_true", help="only (a)")
    parser.add_argument("--skip-sampling", action="store_true", help="only (b)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if not args.skip_sampling:
        print("(a) sampling throughput: tiny policy vs transformers generate")
        if args.quick:
            bench_sampling(prompts=2, n=4, prompt_len=16, new_tokens=32, repeats=1)
        else:
            bench_sampling(prompts=8, n=8, prompt_len=24, new_tokens=200, repeats=args.repeats)
    if not args.skip_memory:
        print("\n(b) log-prob peak memory: chunked selective log-softmax vs naive")
        bench_logprob_memory(tokens=128 if args.quick else 1024, hidden=896, vocab=151936)


if __name__ == "__main__":
    bench_cli.run(main, "generate")
