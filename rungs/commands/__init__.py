"""One module per `rungs` subcommand (see rungs/cli.py for the contract)."""
