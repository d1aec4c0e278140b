"""One module per `rsearch` subcommand; each exposes `register(subparsers)`, and its docstring
is its `--help` (see args.add_command).

A command imports its machinery (rsearch modules that load torch, Ray, pyarrow or plotly)
inside the function that runs it, so `rsearch --help` and a bad flag answer at once.
"""
