"""Benchmarks ConvBERT against transformers' PyTorch ConvBERT and keras-hub BERT.

A wrapper of `convbert_keras.cli.benchmark` (installed as `convbert-benchmark`); `--help`
lists the settings.
"""

import os
import sys

# As the console scripts: TensorFlow's native log lines left out
# (CONVBERT_KERAS_NATIVE_LOG=show shows them).
os.environ.setdefault("CONVBERT_KERAS_NATIVE_LOG", "hide")

from convbert_keras.cli.benchmark import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
