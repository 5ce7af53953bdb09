"""Queries an exported model on a TF Serving model server, over REST or gRPC.

A wrapper of `convbert_keras.cli.serve_client` (installed as
`convbert-serve-client`); `--help` lists the settings.
"""

import os
import sys

# As the console scripts: TensorFlow's native log lines left out
# (CONVBERT_KERAS_NATIVE_LOG=show shows them).
os.environ.setdefault("CONVBERT_KERAS_NATIVE_LOG", "hide")

from convbert_keras.cli.serve_client import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
