"""Serve a local policy over an OpenAI-compatible HTTP API (chat and completions, no streaming).

examples:
  rungs serve --policy tiny --task integration --port 8000
  rungs serve --policy hf:runs/ladder-xyz/checkpoint/policy --port 8001 --model-name ladder
  # then, from anything that speaks the OpenAI API:
  rungs eval --task integration --policy openai:http://127.0.0.1:8000/v1
"""

from __future__ import annotations

import argparse

from rungs.commands._policy_args import add_policy_arguments, policy_kwargs
from rungs.config import finite_float_arg

HELP = "serve a local policy over an OpenAI-compatible HTTP API"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_policy_arguments(parser)
    parser.add_argument("--task", default="integration",
                        help="task whose model to load: the tiny policy has one per task (default: integration, "
                             "as in every other command; the task's alphabet for --policy tiny:random)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0 picks a free one)")
    parser.add_argument("--model-name", default=None, help="the model id clients ask for (default: the policy's name)")
    parser.add_argument("--max-connections", type=int, default=64,
                        help="connections served at once; one more is answered 503 (default: 64)")
    parser.add_argument("--idle-timeout", type=finite_float_arg, default=30.0,
                        help="seconds a connection may stay silent before it is closed (default: 30)")


def run(args: argparse.Namespace) -> int:
    from rungs.errors import UserError
    from rungs.policies import load_policy
    from rungs.serve import make_server

    if not 0 <= args.port <= 65535:
        raise UserError(f"--port must be in [0, 65535], got {args.port}")
    if args.max_connections < 1:
        raise UserError(f"--max-connections must be >= 1, got {args.max_connections}")
    if not args.idle_timeout > 0:
        raise UserError(f"--idle-timeout must be > 0 seconds, got {args.idle_timeout}")
    from rungs.tasks import get_task

    get_task(args.task)  # an unknown task is refused before a policy is looked up for it
    policy = load_policy(args.policy, **policy_kwargs(args, args.task))
    try:
        server = make_server(policy, args.host, args.port, args.model_name, max_connections=args.max_connections,
                             idle_timeout=args.idle_timeout)
    except OSError as err:
        raise UserError(f"cannot listen on {args.host}:{args.port}: {err.strerror or err}") from None
    host, port = server.server_address[:2]
    print(f"rungs serve: {policy.name} as model {server.app.model_name!r} at http://{host}:{port}/v1 (Ctrl-C stops)",
          flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        policy.close()
    return 0
