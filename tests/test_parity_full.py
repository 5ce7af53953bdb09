"""One full-depth parity check: the published base size, 12 layers, through
the conversion CLI.

transformers' PyTorch ConvBERT gets weights far from initialisation
(`reference.spread_weights`); its float64 run is the truth, and our float32
backbone, converted with the CLI and loaded with
`ConvBertBackbone.from_preset`, must be as close to it as transformers' own
float32 run. Every width is checked at two layers in test_parity_sensitive.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from convbert_keras import ConvBertBackbone
from convbert_keras import convbert_config

pytestmark = [pytest.mark.slow, pytest.mark.reference]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_base_at_full_depth_matches_transformers_float64(tmp_path):
    import torch

    from convbert_keras.lab import reference

    kwargs = convbert_config("base")
    model = reference.random_hf_model(kwargs, seed=1, spread=True)
    model.save_pretrained(tmp_path / "hf")
    inputs = reference.sample_inputs(kwargs["vocabulary_size"], batch_size=2, length=128, seed=1)
    theirs = reference.reference_outputs(model, inputs).astype("float64")
    truth = reference.reference_outputs(model.to(torch.float64), inputs)
    del model

    result = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "scripts", "convert_checkpoint.py"),
            "--source",
            "hf",
            "--input",
            str(tmp_path / "hf"),
            "--output",
            str(tmp_path / "preset"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    backbone = ConvBertBackbone.from_preset(str(tmp_path / "preset"))
    got = np.asarray(backbone.predict_on_batch(inputs)["sequence_output"], "float64")
    our_error = float(np.abs(got - truth).max())
    their_error = float(np.abs(theirs - truth).max())
    print(
        f"base, 12 layers: max abs error against float64: ours {our_error:.2e}, "
        f"transformers float32 {their_error:.2e}"
    )
    # Same order as transformers' own float32 (summation orders differ).
    assert our_error <= 3 * their_error
