"""Writes `tf_model.h5` fixtures with transformers' own TF2 ConvBERT.

transformers 5 dropped its TensorFlow models, so this runs in a side
environment with transformers 4.x and tf-keras (`make fixtures` builds it):
    .venv-tf-h5/bin/python scripts/make_tf_h5_fixture.py

For each PyTorch fixture (`tests/fixtures/<name>`: config.json and
model.safetensors) it loads `TFConvBertModel` from the PyTorch weights,
checks that it reproduces the fixture's `reference.npz`, and saves it with
`save_pretrained` to `tests/fixtures/<name>_tf` beside a `provenance.json`
naming the versions that wrote it. It imports nothing from convbert_keras,
so the file is what transformers writes, not our reading of its layout.
"""

import argparse
import json
import os
import sys

import numpy as np

# TFConvBertModel is a tf.keras (Keras 2) model; tf-keras provides it.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402
import transformers  # noqa: E402

SOURCES = ("tiny", "tiny_grouped")
TOLERANCE = 1e-5


def reproduce_reference(model, directory):
    """Max abs difference between the TF model and the stored PyTorch outputs."""
    data = np.load(os.path.join(directory, "reference.npz"))
    outputs = model(
        input_ids=tf.constant(data["token_ids"]),
        token_type_ids=tf.constant(data["segment_ids"]),
        attention_mask=tf.constant(data["padding_mask"]),
        training=False,
    )
    return float(np.abs(outputs.last_hidden_state.numpy() - data["sequence_output"]).max())


def write_fixture(fixtures, name):
    """Converts `fixtures/<name>` with transformers and saves `<name>_tf`."""
    source = os.path.join(fixtures, name)
    target = os.path.join(fixtures, f"{name}_tf")
    # A fresh session, so that every file names its model `tf_conv_bert_model`
    # as a first load in a new process does, not `tf_conv_bert_model_1`.
    tf_keras.backend.clear_session()
    model = transformers.TFConvBertModel.from_pretrained(source, from_pt=True)
    error = reproduce_reference(model, source)
    if error > TOLERANCE:
        raise SystemExit(
            f"{name}: TFConvBertModel differs from the PyTorch reference by "
            f"{error:.2e} (> {TOLERANCE}); not writing {target}."
        )
    model.save_pretrained(target)
    provenance = {
        "source": f"tests/fixtures/{name}",
        "writer": (
            "transformers.TFConvBertModel.from_pretrained(source, from_pt=True).save_pretrained"
        ),
        "transformers": transformers.__version__,
        "tf_keras": tf_keras.__version__,
        "tensorflow": tf.__version__,
        "python": sys.version.split()[0],
        "max_abs_error_vs_reference": error,
    }
    with open(os.path.join(target, "provenance.json"), "w") as f:
        json.dump(provenance, f, indent=2)
        f.write("\n")
    print(f"wrote {target} (max abs error vs the PyTorch reference {error:.1e})")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--fixtures", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures")
    )
    args = parser.parse_args()
    major = int(transformers.__version__.split(".")[0])
    if major >= 5:
        raise SystemExit(
            f"transformers {transformers.__version__} has no TFConvBertModel; run "
            "this in the side environment (`make fixtures` builds .venv-tf-h5)."
        )
    for name in SOURCES:
        write_fixture(args.fixtures, name)


if __name__ == "__main__":
    main()
