"""Queries an exported model on a TF Serving model server, over REST or gRPC.

A wrapper of `convbert_keras.cli.serve_client` (installed as
`convbert-serve-client`); `--help` lists the settings.
"""

import os
import sys

# TensorFlow's C++ start-up chatter (gRPC builds its tensors with TensorFlow).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from convbert_keras.cli.serve_client import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
