"""Writing run files so that a kill never leaves half of one."""

import json
import os


def write_json(path, value):
    """Writes `value` as JSON to `path` through a temporary file and a
    rename: readers see the old file or the new one, never a torn one."""
    partial = f"{path}.partial"
    with open(partial, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2)
    os.replace(partial, path)
