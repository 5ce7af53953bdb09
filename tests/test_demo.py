"""The main job end to end, on a cut of the built-in data."""

import json
import os

import numpy as np
import pytest

from convbert_keras.data import load_rotten_tomatoes_splits
from convbert_keras.lab.comparison import COMPARISON_CONFIG
from convbert_keras.lab.comparison import comparison_tokenizer
from convbert_keras.lab.demo import ARM_NAMES
from convbert_keras.lab.demo import EXPORTABLE_ARMS
from convbert_keras.lab.demo import pick_by_validation
from convbert_keras.lab.demo import run_demo

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
    # The main job reuses a vocabulary it finds in its work folder: one
    # learnt from a cut of the snippets (all of them take 20 s; the learning
    # itself is tested in test_comparison.py).
    snippets = load_rotten_tomatoes_splits()["train"][0][:1000]
    comparison_tokenizer(settings["work_dir"], snippets)
    result = run_demo(**settings, log=lines.append)
    assert set(result["test"]) == {"convbert_rtd_reinit", "convbert_rtd", "scratch", "bag_of_words"}
    for scores in result["test"].values():
        assert set(scores) == {"accuracy", "f1"}
    served = result["served"]
    assert served["version_dir"].endswith(os.path.join("convbert_sentiment", "1"))
    assert "convbert_sentiment" in (tmp_path / "saved_models" / "models.config").read_text()
    # The validation movies pick what ships, among the three ConvBERTs.
    records = {
        arm: json.loads((tmp_path / "runs" / "seed_0" / arm / "results.json").read_text())
        for arm in ("convbert_rtd_reinit", "convbert_rtd", "scratch")
    }
    assert result["validation"] == {arm: r["best"]["score"] for arm, r in records.items()}
    assert result["picked"] == max(records, key=lambda arm: records[arm]["best"]["score"])
    (announced,) = [line for line in lines if line.startswith("4/5")]
    assert ARM_NAMES[result["picked"]] + " (validation accuracy" in announced
    # The server answers what the picked model predicts, for held-out texts.
    classifier = load_task(
        str(tmp_path / "runs" / "seed_0" / result["picked"] / "finetune" / "preset")
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
    # It ends with what it wrote and what to try next.
    assert any(settings["work_dir"] in line for line in lines[-7:])
    assert any("docker run" in line for line in lines[-4:])
    assert any("convbert-finetune --train" in line for line in lines[-4:])
    # Run again: the finished runs are reused, the export gets a new version.
    again = run_demo(**settings, log=lines.append)
    assert again["test"] == result["test"]
    assert again["served"]["version_dir"].endswith(os.path.join("convbert_sentiment", "2"))
    assert sum("reusing" in line for line in lines) == 4
    check_arm_records(tmp_path / "runs" / "seed_0", result["test"])
    with pytest.raises(ValueError, match="was made with epochs=1, not 2"):
        run_demo(**dict(settings, epochs=2), log=lines.append)


def check_arm_records(seed_dir, test_scores):
    """What `comparison.run_arm` keeps for each arm of the main job."""
    records = {
        arm: json.loads((seed_dir / arm / "results.json").read_text()) for arm in test_scores
    }
    for arm, record in records.items():
        assert record["settings"]["pretrain_steps"] == 8 and record["settings"]["epochs"] == 1
        assert record["test"] == test_scores[arm]
        if arm != "bag_of_words":
            # The test score is the chosen epoch's model's, computed once.
            finetuned = json.loads((seed_dir / arm / "finetune" / "results.json").read_text())
            assert finetuned["test"]["test"] == record["test"]
            assert finetuned["best"] == record["best"]
    for arm in ("convbert_rtd", "convbert_rtd_reinit"):
        pretraining = records[arm]["pretraining"]
        assert pretraining["step"] == 8 and "mlm_loss" in pretraining
        assert len(pretraining["token_state_spread"]) == COMPARISON_CONFIG["num_layers"]
    assert records["scratch"]["pretraining"] is None
    # One pretraining run serves both pretrained arms: the `_reinit` arm
    # fine-tunes it with its top layer re-initialised, the other as it is.
    assert not (seed_dir / "convbert_rtd_reinit" / "pretrain").exists()
    runs = {
        arm: json.loads((seed_dir / arm / "finetune" / "run_config.json").read_text())
        for arm in ("convbert_rtd", "convbert_rtd_reinit")
    }
    assert runs["convbert_rtd_reinit"]["preset"] == runs["convbert_rtd"]["preset"]
    assert runs["convbert_rtd_reinit"]["reinitialize_layers"] == 1
    assert "reinitialize_layers" not in runs["convbert_rtd"]


def test_validation_picks_the_convbert_that_ships_the_first_on_a_tie():
    validation = dict(zip(EXPORTABLE_ARMS, (0.60, 0.70, 0.70)))
    assert pick_by_validation(validation) == "convbert_rtd"
    validation["scratch"] = 0.71
    assert pick_by_validation(validation) == "scratch"
