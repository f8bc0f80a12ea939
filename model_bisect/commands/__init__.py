"""The subcommands of `model-bisect`, one module each, and what they share."""
