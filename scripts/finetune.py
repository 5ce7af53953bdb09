"""Fine-tunes and evaluates a ConvBERT task model with the paper's recipe.

A wrapper of `convbert_keras.cli.finetune` (installed as `convbert-finetune`); `--help`
lists the settings.
"""

import os
import sys

# TensorFlow's C++ start-up chatter would hide the progress lines.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from convbert_keras.cli.finetune import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
