"""Converts a ConvBERT checkpoint into a keras-hub preset directory.

A wrapper of `convbert_keras.cli.convert` (installed as `convbert-convert`); `--help`
lists the settings.
"""

import os
import sys

# TensorFlow's C++ start-up chatter would hide the progress lines.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from convbert_keras.cli.convert import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
