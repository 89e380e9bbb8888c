"""Jobs composed from the layers below them: evaluate (test-time scaling), and the training pipelines.

Each pipeline is a plain function over a dataclass config (`evaluate(EvalConfig(...))`), so that
the CLI, notebooks and tests run exactly the same code.
"""
