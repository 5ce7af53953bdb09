"""Writing run files so that a kill never leaves half of one."""

import json
import os


def write_bytes(path, data):
    """Writes `data` to `path` through a temporary file and a rename:
    readers see the old file or the new one, never a torn one."""
    partial = f"{path}.partial"
    with open(partial, "wb") as f:
        f.write(data)
    os.replace(partial, path)


def write_json(path, value):
    """Writes `value` as JSON to `path`, whole or not at all (`write_bytes`)."""
    write_bytes(path, json.dumps(value, indent=2).encode("utf-8"))
