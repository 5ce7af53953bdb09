"""Benchmarks ConvBERT against transformers' PyTorch ConvBERT and keras-hub BERT.

A wrapper of `convbert_keras.cli.benchmark` (installed as `convbert-benchmark`); `--help`
lists the settings.
"""

import os
import sys

# TensorFlow's C++ start-up chatter would hide the progress lines.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from convbert_keras.cli.benchmark import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
