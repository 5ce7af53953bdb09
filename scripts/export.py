"""Exports a fine-tuned task preset for TensorFlow Serving.

A wrapper of `convbert_keras.cli.export` (installed as `convbert-export`); `--help`
lists the settings.
"""

import os
import sys

# TensorFlow's C++ start-up chatter would hide the progress lines.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from convbert_keras.cli.export import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
