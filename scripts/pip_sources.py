"""Prints pip's configured package sources as arguments for `uv pip install`.

`make install` installs with uv, which does not read pip's configuration. This
hands on pip's `index-url`, `extra-index-url` and `find-links` settings (from
its configuration files and `PIP_*` variables, as `pip config list` shows them),
so that uv installs from the places pip would: a machine may keep wheels on
disk, or reach packages only through a mirror.
"""

import ast
import subprocess
import sys

# `pip config list` names each setting `<section>.<key>`, the sections of all
# its files merged; `pip install` reads `[global]`, then `[install]`, then the
# `PIP_*` variables (`:env:`), each overriding the one before.
SECTIONS = ("global", "install", ":env:")
KEYS = ("index-url", "extra-index-url", "find-links")


def pip_settings():
    """`{key: [(section, value)]}` of the keys above."""
    listing = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    settings = {key: [] for key in KEYS}
    for line in listing.splitlines():
        name, _, value = line.partition("=")
        section, _, key = name.rpartition(".")
        if key in settings and section in SECTIONS:
            settings[key].append((section, ast.literal_eval(value)))
    return settings


def uv_arguments(settings):
    """uv's flags for pip's settings: the index of the overriding section,
    every extra index and find-links location once."""
    arguments = []
    indexes = sorted(settings["index-url"], key=lambda item: SECTIONS.index(item[0]))
    if indexes:
        arguments += ["--index-url", indexes[-1][1]]
    for key in ("extra-index-url", "find-links"):
        seen = []
        for _, value in settings[key]:
            seen += [location for location in value.split() if location not in seen]
        for location in seen:
            arguments += [f"--{key}", location]
    return arguments


if __name__ == "__main__":
    print(" ".join(uv_arguments(pip_settings())))
