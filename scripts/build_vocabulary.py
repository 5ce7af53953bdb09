"""Learns a WordPiece vocab.txt for ConvBertTokenizer from text files.

A wrapper of `convbert_keras.cli.vocabulary` (installed as `convbert-vocabulary`); `--help`
lists the settings.
"""

import os
import sys

# TensorFlow's C++ start-up chatter would hide the progress lines.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from convbert_keras.cli.vocabulary import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
