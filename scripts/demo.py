"""The main job: what pretraining buys, from raw text to a model served by TF Serving.

A wrapper of `convbert_keras.cli.demo` (installed as `convbert-demo`); `--help`
lists the settings.
"""

import os
import sys

# TensorFlow's C++ start-up chatter would hide the progress lines.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from convbert_keras.cli.demo import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
