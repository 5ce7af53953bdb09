"""Full-size parity with transformers' PyTorch ConvBERT (random weights).

Each published size is built in transformers, saved with save_pretrained,
converted with the CLI, loaded with ConvBertBackbone.from_preset, and run on
the same padded two-segment batch.
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


@pytest.mark.parametrize("size", ["small", "medium-small", "base"])
def test_published_size_matches_transformers(tmp_path, size):
    from convbert_keras.convert import reference

    kwargs = convbert_config(size)
    model = reference.random_hf_model(kwargs, seed=1)
    model.save_pretrained(tmp_path / "hf")
    inputs = reference.sample_inputs(kwargs["vocabulary_size"], batch_size=3, length=64, seed=1)
    expected = reference.reference_outputs(model, inputs)
    del model

    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "scripts", "convert_checkpoint.py"),
         "--source", "hf", "--input", str(tmp_path / "hf"), "--output", str(tmp_path / "preset")],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    backbone = ConvBertBackbone.from_preset(str(tmp_path / "preset"))
    got = backbone.predict_on_batch(inputs)["sequence_output"]
    error = float(np.abs(got - expected).max())
    print(f"{size}: max abs difference {error:.2e}")
    assert error < 1e-4
