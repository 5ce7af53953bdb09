"""The main job end to end, on a cut of the built-in data."""

import os

import numpy as np
import pytest

from convbert_keras.demo import run_demo

pytestmark = pytest.mark.slow


def test_main_job_compares_exports_and_serves_what_the_model_predicts(tmp_path):
    from convbert_keras.models.convbert_task import load_task

    lines = []
    settings = dict(
        work_dir=str(tmp_path / "runs"),
        export_dir=str(tmp_path / "saved_models"),
        labels=64,
        pretrain_steps=8,
        epochs=1,
        examples=4,
        max_eval_examples=128,
    )
    result = run_demo(**settings, log=lines.append)
    assert set(result["test"]) == {"convbert_rtd_reinit", "convbert_rtd", "scratch", "bag_of_words"}
    for scores in result["test"].values():
        assert set(scores) == {"accuracy", "f1"}
    served = result["served"]
    assert served["version_dir"].endswith(os.path.join("convbert_sentiment", "1"))
    assert "convbert_sentiment" in (tmp_path / "saved_models" / "models.config").read_text()
    # The server answers what the Keras model predicts, for held-out texts.
    classifier = load_task(
        str(tmp_path / "runs" / "seed_0" / "convbert_rtd_reinit" / "finetune" / "preset")
    )
    logits = classifier.predict(served["texts"], verbose=0)
    expected = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(served["probabilities"], expected, atol=1e-5)
    assert served["labels"] == [["rotten", "fresh"][i] for i in expected.argmax(-1)]
    shown = [line for line in lines if "(right, truth" in line or "(WRONG, truth" in line]
    assert len(shown) == 4
    assert [line.split()[0] for line in lines if line[:2] in ("1/", "2/", "3/", "4/", "5/")] == [
        "1/5",
        "2/5",
        "3/5",
        "4/5",
        "5/5",
    ]
    # Run again: the finished runs are reused, the export gets a new version.
    again = run_demo(**settings, log=lines.append)
    assert again["test"] == result["test"]
    assert again["served"]["version_dir"].endswith(os.path.join("convbert_sentiment", "2"))
    assert sum("reusing" in line for line in lines) == 4
    # One pretraining run serves both pretrained arms.
    assert not (tmp_path / "runs" / "seed_0" / "convbert_rtd_reinit" / "pretrain").exists()
