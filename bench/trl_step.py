"""One GRPO step of rungs' trainer against TRL's GRPOTrainer: same model, prompts, batch and loss.

    python bench/trl_step.py            # about 1.5 minutes on a busy 2-core CPU
    python bench/trl_step.py --quick    # smaller sizes, for a smoke test

Why: rungs trains through its own loop (rungs/train/grpo.py) rather than TRL's, and one reason to
own the loop is that it should be cheaper per step. This measures that claim on the `hf` policy,
where both trainers sample with the very same `transformers.generate`, so what differs is what
each does around it: prompt handling, log-probs (rungs: sampler log-probs plus a chunked,
fused-backward selective log-softmax; TRL: the model's fused LM head), the loss, the optimizer
step, and the framework around them (TRL: accelerate + Trainer + datasets). Goal: rungs' median
step time <= 0.5x TRL's.

What is matched (each arm is its own subprocess):
- the model: a tiny random Qwen2 (or Llama) with a character tokenizer and a chat template, built
  locally (tests/_hf_tiny.py) and loaded from the same directory by both; float32 on CPU (or on
  a GPU with --device cuda, where each arm's peak torch.cuda.max_memory_allocated is printed too);
- the prompts: `task.prompt(problem, "instruct")` for the same generated problems, through the
  tokenizer's chat template (TRL gets conversational prompts; rungs' HFPolicy applies the same
  template). The prompt ids each trainer actually built are compared and the match is printed;
- one step = `prompts` prompts x `generations` samples of exactly `length` tokens (end of
  sequence is suppressed by `min_new_tokens` in both: TRL through `generation_kwargs`, rungs
  through the model's generation_config, which HFPolicy's sampling config inherits unset fields
  from), one optimizer update accumulated over micro-batches of `micro` completions (TRL:
  per_device_train_batch_size = micro, gradient_accumulation_steps = steps_per_generation =
  prompts*generations/micro, so neither computes old log-probs);
- the objective: loss_type dapo, group-scaled advantages, beta 0, clipping 0.2, max_grad_norm 1,
  AdamW at a constant learning rate, temperature 1 with no top-k/top-p; the reward is the task's
  verifier only (rungs' format term is switched off), through a 2-worker `VerifierPool` in both
  (TRL's via `rungs.integrations.trl_reward`);
- gradient checkpointing off in both (TRL's GRPOConfig turns it on by default, which trades a
  second forward for memory; the first version of this bench left TRL's on, and so compared
  rungs without recomputation against TRL with it), or on in both with --gradient-checkpointing;
- no vLLM, no logging or checkpoints, `torch.set_num_threads(threads)` in both.
A third arm, rungs-nolp, is rungs with `HFPolicy(generation_logprobs=False)`: no log-prob pass
after sampling (on-policy GRPO uses those log-probs only for the sampling_logp_difference metric).

Timing: the arms set up concurrently, then run in lock step: round k runs every arm's k-th step,
one arm at a time, in an order rotated each round, so load from other processes on a shared
machine falls on all arms alike (run one after the other, the same arm's step time here varied
2x between runs). Round 0 is a warm-up; the table gives medians over the `steps` timed rounds of
wall time (rungs: around `train_steps(1)`; TRL: from release to `on_step_end`, so everything the
Trainer does per step counts) and of the process's CPU time, which other load disturbs less.
Breakdown: rungs' own time/generate, time/verify, time/update; for TRL its `_generate` (tokenize,
generate, decode) and the reward call, the rest counted as update. Memory: each arm's peak RSS
(`ru_maxrss` of its own process; verifier workers are separate processes in both) and its RSS
once everything was loaded, before the first step.

Prints a table, the ratio and the load average; asserts nothing (the machine may be shared, so
rerun to see the spread).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # bench_cli beside this file, also when loaded by path (the tests)
    sys.path.insert(0, str(HERE))
import bench_cli  # noqa: E402

QUICK = {"hidden": 64, "layers": 2, "prompts": 2, "generations": 4, "length": 16, "micro": 4, "steps": 2}  # --quick
ROOT = HERE.parent
CHILD_ENV = {
    "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false", "WANDB_DISABLED": "true", "TQDM_DISABLE": "1",
}
GOAL = 0.5
ARMS = ("rungs", "trl", "rungs-nolp")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--task", default="countdown", choices=("countdown", "integration"),
                   help="the task whose problems both arms train on (default countdown)")
    p.add_argument("--difficulty", type=float, default=0.3, help="task.generate difficulty of the problems")
    p.add_argument("--arch", default="qwen2", choices=("qwen2", "llama"), help="model architecture (default qwen2)")
    p.add_argument("--hidden", type=bench_cli.positive, default=128, help="hidden size (MLP is 2x; 4 heads, 2 KV heads)")
    p.add_argument("--layers", type=bench_cli.positive, default=4, help="transformer layers (default 4)")
    p.add_argument("--prompts", type=bench_cli.positive, default=4, help="prompts per step")
    p.add_argument("--generations", type=bench_cli.positive, default=8, help="samples per prompt (G)")
    p.add_argument("--length", type=bench_cli.positive, default=32, help="completion tokens (forced: no early end of sequence)")
    p.add_argument("--micro", type=bench_cli.positive, default=8, help="completions per forward/backward pass")
    p.add_argument("--steps", type=bench_cli.positive, default=5, help="timed steps after one warm-up step")
    p.add_argument("--lr", type=float, default=1e-5, help="learning rate (default 1e-5)")
    p.add_argument("--threads", type=bench_cli.positive, default=1, help="torch threads in each arm")
    p.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction, default=False,
                   help="recompute activations in the backward pass, in both arms (TRL's GRPOConfig turns it on by "
                        "default; off here unless given)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                   help="where both arms run the model (float32 on either; cuda: peak GPU memory is reported too)")
    p.add_argument("--order", default="rungs,trl,rungs-nolp",
                   help="arms to run, in this order (comma-separated): rungs, trl, rungs-nolp")
    p.add_argument("--quick", action="store_true", help="small sizes, 2 timed steps: a smoke test")
    p.add_argument("--verbose", action="store_true", help="show each arm's own output")
    # Internal: run one arm in this process and write its figures to --out.
    p.add_argument("--child", choices=ARMS, help=argparse.SUPPRESS)
    p.add_argument("--model-dir", help=argparse.SUPPRESS)
    p.add_argument("--report-fd", type=int, help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:  # the smoke-test sizes, for every size flag not given on the command line
        words = sys.argv[1:] if argv is None else argv
        given = [name for name in QUICK if any(w == f"--{name}" or w.startswith(f"--{name}=") for w in words)]
        for name, value in QUICK.items():
            if name not in given:
                setattr(args, name, value)
        if given and not args.child:
            print("trl_step: --quick keeps the given " + ", ".join(f"--{name} {getattr(args, name)}" for name in given),
                  file=sys.stderr)
    batch = args.prompts * args.generations
    if batch % args.micro:
        p.error(f"--micro {args.micro} must divide prompts x generations = {batch}")
    return args


# -- shared by both arms ----------------------------------------------------------------------------
def problems_for(args: argparse.Namespace) -> list[Any]:
    """Enough problems that no arm repeats one: (1 warm-up + steps) x prompts."""
    from rungs.tasks import get_task

    task = get_task(args.task)
    return task.generate((1 + args.steps) * args.prompts, difficulty=args.difficulty, seed=0)


def rss_mib() -> float:
    """Current resident set size of this process (Linux /proc; else the peak so far)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mib()


def peak_gpu(args: argparse.Namespace) -> dict[str, float]:
    """{"peak_gpu_mib": torch.cuda.max_memory_allocated in MiB} on --device cuda, else {}."""
    import torch

    return {"peak_gpu_mib": torch.cuda.max_memory_allocated() / 2**20} if args.device == "cuda" else {}


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# -- the lock-step protocol (child side) ---------------------------------------------------------------
class Link:
    """A child waits for "go" on stdin before each step and reports JSON lines on its own pipe
    (stdout is left to the libraries' chatter)."""

    def __init__(self, fd: int) -> None:
        self.out = os.fdopen(fd, "w", buffering=1, encoding="utf-8")

    def send(self, event: str, **fields: Any) -> None:
        self.out.write(json.dumps({"event": event, **fields}) + "\n")
        self.out.flush()

    def wait(self) -> None:
        if sys.stdin.readline().strip() != "go":
            raise SystemExit(0)  # the parent has gone or stopped us


# -- the rungs arm ------------------------------------------------------------------------------------
def run_rungs(args: argparse.Namespace, link: Link, sampler_logprobs: bool = True) -> None:
    import torch

    torch.set_num_threads(args.threads)
    from rungs.policies.hf import HFPolicy
    from rungs.tasks import get_task
    from rungs.train.grpo import GRPOTrainer
    from rungs.train.grpo_config import GRPOConfig
    from rungs.verify.pool import VerifierPool

    task = get_task(args.task)
    problems = problems_for(args)
    policy = HFPolicy(args.model_dir, device=args.device, dtype="float32", seed=0, generation_logprobs=sampler_logprobs,
                      gradient_checkpointing=args.gradient_checkpointing)
    # Force full-length completions: HFPolicy's GenerationConfig leaves min_new_tokens unset, and
    # transformers fills unset fields from the model's generation_config.
    policy.model.generation_config.min_new_tokens = args.length
    config = GRPOConfig(
        learning_rate=args.lr, lr_scheduler_type="constant", max_steps=1 + args.steps, seed=0,
        prompts_per_step=args.prompts, num_generations=args.generations, per_device_train_batch_size=args.micro,
        steps_per_generation=1, num_iterations=1, max_completion_length=args.length,
        temperature=1.0, top_p=1.0, top_k=0, beta=0.0, epsilon=0.2, loss_type="dapo", scale_rewards="group",
        max_grad_norm=1.0, format_reward_weight=0.0, eval_on_start=False, save_steps=0, logging_steps=10**6,
    )
    prompt_ids = policy.encode_prompts([task.prompt(problems[0], policy.prompt_style)])[0]
    with VerifierPool(task, workers=2) as pool:
        trainer = GRPOTrainer(policy, task, config, pool=pool, problems=problems, progress=False)
        link.send("ready", rss_setup_mib=rss_mib(), prompt_ids=prompt_ids)
        for _ in range(1 + args.steps):  # the first is the warm-up (it also starts the verifier workers)
            link.wait()
            t0, c0 = time.perf_counter(), time.process_time()
            [(_, m)] = trainer.train_steps(1)
            link.send("step", wall=time.perf_counter() - t0, cpu=time.process_time() - c0,
                      generate=m["time/generate"], verify=m["time/verify"], update=m["time/update"],
                      tokens=m["tokens/generated"])
    link.send("done", peak_rss_mib=peak_rss_mib(), threads=torch.get_num_threads(), **peak_gpu(args))


# -- the TRL arm --------------------------------------------------------------------------------------
class CountingReward:
    """Wraps a TRL reward function: counts completion tokens and the time spent scoring."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.__name__ = inner.__name__
        self.tokens = 0
        self.seconds = 0.0

    def __call__(self, prompts: list[Any], completions: list[Any], completion_ids: list[list[int]], **kwargs: Any) -> list[float | None]:
        t0 = time.perf_counter()
        self.tokens += sum(len(ids) for ids in completion_ids)
        out = self.inner(prompts=prompts, completions=completions, completion_ids=completion_ids, **kwargs)
        self.seconds += time.perf_counter() - t0
        return out


def run_trl(args: argparse.Namespace, link: Link, out_dir: Path) -> None:
    import torch

    torch.set_num_threads(args.threads)
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from rungs.integrations import trl_reward
    from rungs.tasks import get_task

    task = get_task(args.task)
    problems = problems_for(args)
    rows = [{"prompt": [{"role": "user", "content": task.prompt(p, "instruct")}], "problem": p.text,
             "answer": p.answer, "id": p.id, **p.meta} for p in problems]
    dataset = Dataset.from_list(rows)
    model = AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    accumulation = args.prompts * args.generations // args.micro
    config = GRPOConfig(
        output_dir=str(out_dir), use_cpu=args.device == "cpu", bf16=False, fp16=False, seed=0,
        learning_rate=args.lr, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, max_steps=1 + args.steps,
        per_device_train_batch_size=args.micro, gradient_accumulation_steps=accumulation,
        steps_per_generation=accumulation, num_iterations=1, num_generations=args.generations,
        max_completion_length=args.length, generation_kwargs={"min_new_tokens": args.length},
        temperature=1.0, top_p=1.0, top_k=0, beta=0.0, epsilon=0.2, loss_type="dapo", scale_rewards="group",
        max_grad_norm=1.0, use_vllm=False, report_to="none", save_strategy="no", logging_steps=10**6,
        gradient_checkpointing=args.gradient_checkpointing,  # TRL's default is True: matched, not left to it
        disable_tqdm=True, log_completions=False, dataloader_num_workers=0,
    )
    reward = CountingReward(trl_reward(task, workers=2))
    generate_s = [0.0]
    start: dict[str, float] = {}

    def mark() -> None:
        start.update(wall=time.perf_counter(), cpu=time.process_time(), generate=generate_s[0],
                     verify=reward.seconds, tokens=reward.tokens)

    class Clock(TrainerCallback):
        """Holds the Trainer at each step boundary until the driver says go; a step is go -> on_step_end."""

        def on_train_begin(self, *_: Any, **__: Any) -> None:
            link.send("ready", rss_setup_mib=rss_mib(), prompt_ids=prompt_ids)
            link.wait()
            mark()

        def on_step_end(self, _args: Any, state: Any, *__: Any, **___: Any) -> None:
            wall, gen, ver = time.perf_counter() - start["wall"], generate_s[0] - start["generate"], reward.seconds - start["verify"]
            link.send("step", wall=wall, cpu=time.process_time() - start["cpu"], generate=gen, verify=ver,
                      update=wall - gen - ver, tokens=reward.tokens - start["tokens"])
            if state.global_step < state.max_steps:
                link.wait()
                mark()

    trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=config, train_dataset=dataset,
                          processing_class=tokenizer, callbacks=[Clock()])
    inner_generate = trainer._generate

    def timed_generate(prompts: list[Any]) -> Any:  # tokenize + generate + decode
        t0 = time.perf_counter()
        try:
            return inner_generate(prompts)
        finally:
            generate_s[0] += time.perf_counter() - t0

    trainer._generate = timed_generate
    prompt_ids = list(trainer._tokenize_prompts([rows[0]["prompt"]])[0][0])
    trainer.train()
    reward.inner.close()
    link.send("done", peak_rss_mib=peak_rss_mib(), threads=torch.get_num_threads(), **peak_gpu(args))


# -- the driver -------------------------------------------------------------------------------------------
class Arm:
    """One child process, driven a step at a time."""

    def __init__(self, args: argparse.Namespace, name: str, model_dir: Path, work: Path) -> None:
        self.name = name
        self.log_path = work / f"{name}.log"
        read_fd, write_fd = os.pipe()
        argv = [sys.executable, str(Path(__file__).resolve()), "--child", name, "--model-dir", str(model_dir),
                "--report-fd", str(write_fd), "--work", str(work)]
        for key in ("task", "difficulty", "arch", "hidden", "layers", "prompts", "generations", "length", "micro",
                    "steps", "lr", "threads", "device"):
            argv += [f"--{key}", str(getattr(args, key))]
        argv.append("--gradient-checkpointing" if args.gradient_checkpointing else "--no-gradient-checkpointing")
        env = {**os.environ, **CHILD_ENV, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
        with open(self.log_path, "w", encoding="utf-8") as log:
            self.proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdin=subprocess.PIPE, text=True,
                                         stdout=None if args.verbose else log, stderr=subprocess.STDOUT,
                                         pass_fds=(write_fd,))
        os.close(write_fd)
        self.reports = os.fdopen(read_fd, encoding="utf-8")
        self.info: dict[str, Any] = {}
        self.steps: list[dict[str, Any]] = []
        self.failed = False

    def receive(self, event: str) -> dict[str, Any] | None:
        line = self.reports.readline()
        message = json.loads(line) if line else {}
        if message.get("event") != event:
            self.fail(f"expected {event!r}, got {line.strip()[:80] or 'end of output'}")
            return None
        return message

    def step(self) -> dict[str, Any] | None:
        try:
            self.proc.stdin.write("go\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            self.fail("it exited")
            return None
        return self.receive("step")

    def fail(self, why: str) -> None:
        self.failed = True
        self.proc.wait()
        print(f"{self.name}: failed ({why}; exit {self.proc.returncode}); last lines of its output:")
        print("\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-25:]))

    def close(self) -> None:
        if not self.failed:  # the child may have exited already: its last report is still in the pipe
            done = self.receive("done")
            if done is not None:
                self.info.update(done)
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait()
        self.reports.close()


def run_arms(args: argparse.Namespace, names: list[str], model_dir: Path, work: Path) -> dict[str, dict[str, Any]]:
    """Start every arm (set-up runs concurrently, untimed), then step them in turn: round k runs each
    arm's k-th step, in an order rotated each round, so load from elsewhere hits all arms alike."""
    arms = [Arm(args, name, model_dir, work) for name in names]
    for arm in arms:
        ready = arm.receive("ready")
        if ready is not None:
            arm.info.update(ready)
    for k in range(1 + args.steps):
        shift = k % len(arms)
        line = []
        for arm in arms[shift:] + arms[:shift]:
            if arm.failed:
                continue
            result = arm.step()
            if result is not None:
                if k > 0:  # round 0 is the warm-up
                    arm.steps.append(result)
                line.append(f"{arm.name} {result['wall']:.2f}s")
        print(f"  {'warm-up' if k == 0 else f'step {k}':8} {', '.join(line)}", flush=True)
    for arm in arms:
        arm.close()
    return {arm.name: {**arm.info, "steps": arm.steps} for arm in arms if not arm.failed and arm.steps}


def print_report(results: dict[str, dict[str, Any]]) -> None:
    print(f"\n{'arm':10} {'step s':>7} {'min':>6} {'max':>6} {'CPU s':>6} {'gen s':>6} {'verify':>6} {'update':>6} "
          f"{'tok/step':>8} {'tok/s':>6} {'peak RSS':>9} {'RSS setup':>9} {'threads':>7}")

    def med(r: dict[str, Any], key: str) -> float:
        return statistics.median(step[key] for step in r["steps"])

    for arm, r in results.items():
        walls = [step["wall"] for step in r["steps"]]
        tokens = med(r, "tokens")
        gpu = f" GPU peak {r['peak_gpu_mib']:.0f}Mi" if "peak_gpu_mib" in r else ""
        print(f"{arm:10} {med(r, 'wall'):7.3f} {min(walls):6.3f} {max(walls):6.3f} {med(r, 'cpu'):6.3f} "
              f"{med(r, 'generate'):6.3f} {med(r, 'verify'):6.3f} {med(r, 'update'):6.3f} {tokens:8.0f} "
              f"{tokens / med(r, 'wall'):6.0f} {r.get('peak_rss_mib', float('nan')):7.0f}Mi "
              f"{r.get('rss_setup_mib', float('nan')):7.0f}Mi {r.get('threads', 0):7d}{gpu}")
    print("seconds: medians over the timed steps (step = wall time; CPU = the trainer process's CPU time, less\n"
          "sensitive to other load; gen = tokenize + sample (+ rungs' sampler log-probs); verify = reward; update =\n"
          "the rest). RSS in MiB, verifier workers excluded. rungs-nolp = rungs with HFPolicy(generation_logprobs=\n"
          "False): no log-prob pass after sampling (on-policy training uses it only for a diagnostic metric).")
    if "rungs" in results and "trl" in results:
        same = results["rungs"]["prompt_ids"] == results["trl"]["prompt_ids"]
        print(f"\nprompt ids identical in both trainers: {same} ({len(results['rungs']['prompt_ids'])} tokens)")
    if "trl" in results:
        trl = results["trl"]
        for arm in (a for a in results if a != "trl"):
            r = results[arm]
            ratio = med(r, "wall") / med(trl, "wall")
            mem = r.get("peak_rss_mib", float("nan")) / trl.get("peak_rss_mib", float("nan"))
            print(f"{arm} / TRL: step time {ratio:.2f} (goal <= {GOAL}: {'met' if ratio <= GOAL else 'not met'}), "
                  f"CPU time {med(r, 'cpu') / med(trl, 'cpu'):.2f}, peak RSS {mem:.2f}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        link = Link(args.report_fd)
        if args.child == "trl":
            run_trl(args, link, Path(args.work) / "trl-out")
        else:
            run_rungs(args, link, sampler_logprobs=args.child == "rungs")
        return 0

    sys.path.insert(0, str(ROOT / "tests"))
    from _hf_tiny import make_tiny_hf  # tests/_hf_tiny.py: tiny model + character tokenizer, no downloads

    names = [a.strip() for a in args.order.split(",") if a.strip()]
    unknown = sorted(set(names) - set(ARMS))
    if unknown or not names:
        print(f"--order: unknown arm {(unknown or [''])[0]!r}; expected a comma-separated list of {', '.join(ARMS)}")
        return 2
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="rungs-trl-step-") as tmp:
        work = Path(tmp)
        from transformers.utils import logging as hf_logging

        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # "Writing model shards" otherwise
        model_dir = make_tiny_hf(work / "model", arch=args.arch, hidden=args.hidden, layers=args.layers)
        if bars:
            hf_logging.enable_progress_bar()
        weights = sum(f.stat().st_size for f in model_dir.glob("*.safetensors"))  # float32: 4 bytes a weight
        print(f"model: tiny {args.arch}, hidden {args.hidden}, {args.layers} layers, ~{weights / 4e6:.2f}M params, "
              f"character vocabulary, float32 on {args.device}, {args.threads} torch thread(s) per arm")
        print(f"step: {args.prompts} {args.task} prompts x {args.generations} samples x {args.length} tokens "
              f"(EOS suppressed), micro-batch {args.micro}, 1 optimizer update, loss dapo, beta 0, lr {args.lr}, "
              f"gradient checkpointing {'on' if args.gradient_checkpointing else 'off'} in both; "
              f"1 warm-up + {args.steps} timed steps per arm, arms interleaved step by step")
        print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f} "
              f"({os.cpu_count()} CPUs)", flush=True)
        results = run_arms(args, names, model_dir, work)
    load_after = os.getloadavg()
    print_report(results)
    print(f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    missing = [name for name in names if name not in results]
    if missing:
        print(f"failed arms: {', '.join(missing)} (their output is printed above)")
        return 1
    return 0


if __name__ == "__main__":
    bench_cli.run(main, "trl_step")
