"""One module per `rsearch` subcommand; each exposes `register(subparsers)`."""
