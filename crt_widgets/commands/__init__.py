"""Subcommands of the ``crt-widgets`` command line, one module each.

Each module defines ``NAME`` (the subcommand), ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``; ``crt_widgets.cli`` finds them
by listing this package, so adding a subcommand touches no other file.
"""
