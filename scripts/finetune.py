"""Fine-tunes and evaluates a ConvBERT task model with the paper's recipe.

A wrapper of `convbert_keras.cli.finetune` (installed as `convbert-finetune`); `--help`
lists the settings.
"""

import os
import sys

# As the console scripts: TensorFlow's native log lines left out
# (CONVBERT_KERAS_NATIVE_LOG=show shows them).
os.environ.setdefault("CONVBERT_KERAS_NATIVE_LOG", "hide")

from convbert_keras.cli.finetune import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
