"""The main job end to end, on a cut of the built-in data."""

import os

import pytest

from convbert_keras.demo import run_demo

pytestmark = pytest.mark.slow


def test_main_job_pretrains_finetunes_exports_and_serves(tmp_path):
    lines = []
    scores = run_demo(
        work_dir=str(tmp_path / "runs"), export_dir=str(tmp_path / "saved_models"),
        pretrain_steps=8, epochs=1, max_train_examples=256, max_eval_examples=128,
        log=lines.append,
    )
    assert set(scores) == {"accuracy", "f1"} and 0 <= scores["accuracy"] <= 1
    assert os.path.isfile(tmp_path / "saved_models" / "convbert_sentiment" / "1" / "saved_model.pb")
    assert "convbert_sentiment" in (tmp_path / "saved_models" / "models.config").read_text()
    served = [line for line in lines if line.strip().startswith(("fresh", "rotten"))]
    assert len(served) == 4  # the export answered every example sentence
    assert [line.split()[0] for line in lines if line[:2] in ("1/", "2/", "3/", "4/", "5/")] == [
        "1/5", "2/5", "3/5", "4/5", "5/5"
    ]
