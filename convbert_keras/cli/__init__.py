"""The command-line tools: argument parsing over the library's functions.

Each module's `main(argv=None)` is a console script (`setup.cfg`) and has a
wrapper in `scripts/`.
"""
