"""Each task declares what conversion, fine-tuning and export need, once:
the registry finds it, no consumer names a task class, and a new task is a
new class and nothing else."""

import json
import os
import re
import shutil

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf
from conftest import FIXTURES
from safetensors.numpy import load_file
from safetensors.numpy import save_file

import convbert_keras
from convbert_keras import ConvBertBackbone
from convbert_keras import ConvBertQuestionAnswerer
from convbert_keras import ConvBertTextClassifierPreprocessor
from convbert_keras import metrics as official
from convbert_keras.convert import convert_checkpoint
from convbert_keras.models import convbert_task
from convbert_keras.models.convbert_task import ConvBertTask
from convbert_keras.models.convbert_task import hf_architectures
from convbert_keras.models.convbert_task import string_spec
from convbert_keras.models.convbert_task import task_for_architecture
from convbert_keras.models.convbert_task import task_for_data
from convbert_keras.models.hf_weights import dense_pairs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_task_declares_itself_and_the_registry_finds_it():
    tasks = [
        getattr(convbert_keras, name)
        for name in convbert_keras.__all__
        if isinstance(getattr(convbert_keras, name), type)
        and issubclass(getattr(convbert_keras, name), keras_hub.models.Task)
    ]
    assert len(tasks) == 5
    assert all(issubclass(task, ConvBertTask) for task in tasks)
    # transformers' class names (modeling_convbert.py); its multiple-choice
    # head summarises by the last position and has no match here.
    assert hf_architectures() == [
        "ConvBertForMaskedLM",
        "ConvBertForQuestionAnswering",
        "ConvBertForSequenceClassification",
        "ConvBertForTokenClassification",
    ]
    for architecture in hf_architectures():
        assert task_for_architecture(architecture).hf_architecture == architecture
    assert task_for_data("question_answering") is ConvBertQuestionAnswerer
    with pytest.raises(ValueError, match="ConvBertForMultipleChoice has no ConvBERT task"):
        task_for_architecture("ConvBertForMultipleChoice")
    with pytest.raises(ValueError, match="No task fine-tunes data of kind 'ranking'"):
        task_for_data("ranking")


def test_conversion_finetuning_and_export_name_no_task_class():
    names = {cls.__name__ for cls in convbert_task._registered()} | {"ConvBertMultipleChoice"}
    consumers = [
        "convbert_keras/convert/checkpoint.py",
        "convbert_keras/convert/weights.py",
        "convbert_keras/training/finetuning.py",
        "convbert_keras/export/saved_model.py",
        "convbert_keras/export/tf_serving.py",
        "convbert_keras/cli/convert.py",
        "convbert_keras/cli/export.py",
        "convbert_keras/cli/finetune.py",
    ]
    for path in consumers:
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            # Docstrings and comments may name a task; code may not.
            code = re.sub(r'"""[\s\S]*?"""|#[^\n]*', "", f.read())
        named = sorted(n for n in names if re.search(rf"\b{n}\b", code))
        assert not named, f"{path} names {named}: declare it on the task instead"


def test_a_declaration_belongs_to_one_task(monkeypatch):
    monkeypatch.setattr(convbert_task, "_TASKS", list(convbert_task._TASKS))
    with pytest.raises(ValueError, match="ConvBertForQuestionAnswering.*already declares"):

        class Rival(ConvBertTask):
            hf_architecture = "ConvBertForQuestionAnswering"


@pytest.mark.parametrize(
    "length, stride, query",
    # SQuAD's 384/128/64, scaled down; the stride stays 128 beyond 384.
    [(384, 128, 64), (512, 128, 64), (32, 10, 8), (16, 5, 4), (2, 1, 0)],
)
def test_question_answering_windows_follow_one_rule(length, stride, query):
    assert ConvBertQuestionAnswerer.preprocessor_defaults(length) == {
        "sequence_length": length,
        "doc_stride": stride,
        "max_query_length": query,
    }


def test_fine_tuning_and_conversion_give_the_same_question_answering_windows(tmp_path):
    from convbert_keras.data.finetune_data import FinetuneData
    from convbert_keras.training.finetuning import FinetuneConfig
    from convbert_keras.training.finetuning import _build_task

    converted = convert_checkpoint(
        "hf", os.path.join(FIXTURES, "tiny_question_answerer"), str(tmp_path / "qa")
    )
    positions = converted.backbone.max_sequence_length
    assert positions < 384  # the checkpoint's windows are its positions
    expected = ConvBertQuestionAnswerer.preprocessor_defaults(positions)
    assert {k: converted.preprocessor.get_config()[k] for k in expected} == expected
    data = FinetuneData("question_answering", None, {}, None, ("f1",))
    built = _build_task(
        FinetuneConfig(preset=str(tmp_path / "qa"), sequence_length=positions), data
    )
    assert {k: built.preprocessor.get_config()[k] for k in expected} == expected


@pytest.fixture(scope="module")
def scorer_cls():
    """A task declared here, as a user's new task would be: a score for each
    text from `Dense(1)` on the `[CLS]` state, `scorer` in transformers'
    names. Unregistered when the module's tests end."""
    saved = list(convbert_task._TASKS)

    @keras.saving.register_keras_serializable(package="test_task_declarations")
    class ConvBertSentenceScorer(ConvBertTask, keras_hub.models.Task):
        backbone_cls = ConvBertBackbone
        preprocessor_cls = ConvBertTextClassifierPreprocessor
        hf_architecture = "ConvBertForSentenceScoring"
        data_kind = "sentence_scoring"

        def __init__(self, backbone, preprocessor=None, **kwargs):
            self.backbone = backbone
            self.preprocessor = preprocessor
            self.output_dense = keras.layers.Dense(1, name="score")
            inputs = backbone.input
            outputs = self.output_dense(backbone(inputs)["pooled_output"])
            super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        def compile(self, optimizer="adam", loss=None, **kwargs):
            super().compile(optimizer=optimizer, loss=loss or "mse", **kwargs)

        def hf_head_weights(self):
            return dense_pairs(self.output_dense, "scorer")

        def serving_signatures(self, label_names=None, max_answer_length=30, allow_no_answer=False):
            def score(text):
                return {"score": self(self.preprocessor(text), training=False)[:, 0]}

            return {"serving_default": (score, [string_spec("text")])}

        def warmup_requests(self):
            return [("serving_default", {"text": ["a warm-up"]})]

        def official_scores(self, examples, data, batch_size):
            x, y = examples
            predicted = self.predict(x, batch_size=batch_size, verbose=0)[:, 0]
            return {"pearson": official.pearson(y, predicted)}

    yield ConvBertSentenceScorer
    convbert_task._TASKS[:] = saved


@pytest.mark.slow
def test_a_new_task_is_one_class_that_converts_fine_tunes_and_exports(tmp_path, scorer_cls):
    from convbert_keras.data.finetune_data import FinetuneData
    from convbert_keras.export.saved_model import export_saved_model
    from convbert_keras.training.finetuning import FinetuneConfig
    from convbert_keras.training.finetuning import finetune

    # Conversion: the architecture in config.json picks the class, whose
    # head mapping reads `scorer.*`.
    source = tmp_path / "hf"
    shutil.copytree(os.path.join(FIXTURES, "tiny"), source)
    with open(source / "config.json", encoding="utf-8") as f:
        config = json.load(f)
    config["architectures"] = ["ConvBertForSentenceScoring"]
    with open(source / "config.json", "w", encoding="utf-8") as f:
        json.dump(config, f)
    state = load_file(str(source / "model.safetensors"))
    rng = np.random.default_rng(0)
    state["scorer.weight"] = rng.normal(size=(1, config["hidden_size"])).astype("float32")
    state["scorer.bias"] = np.array([0.5], "float32")
    save_file(state, str(source / "model.safetensors"))
    converted = convert_checkpoint("hf", source, str(tmp_path / "preset"))
    assert type(converted) is scorer_cls
    np.testing.assert_array_equal(converted.output_dense.kernel.numpy(), state["scorer.weight"].T)
    np.testing.assert_array_equal(converted.output_dense.bias.numpy(), [0.5])

    # Fine-tuning: the data kind picks the class; its metric picks the epoch.
    texts = ["the movie was good.", "the plot was bad!", "a great film.", "hello world."] * 4
    scores = np.array([1.0, -1.0, 1.0, 0.0] * 4, "float32")
    data = FinetuneData(
        "sentence_scoring", (texts, scores), {"validation": (texts, scores)}, 1, ("pearson",)
    )
    results = finetune(
        data,
        str(tmp_path / "run"),
        FinetuneConfig(
            preset=str(tmp_path / "preset"),
            epochs=1,
            batch_size=4,
            sequence_length=16,
            jit_compile=False,
        ),
        verbose=0,
    )
    assert np.isfinite(results["best"]["validation"]["pearson"])

    # Export: its own signature, next to the generic token-id one.
    tuned = convbert_task.load_task(str(tmp_path / "run" / "preset"))
    assert type(tuned) is scorer_cls
    path = export_saved_model(tuned, str(tmp_path / "exported"))
    loaded = tf.saved_model.load(path)
    assert set(loaded.signatures) == {"serving_default", "predict_token_ids"}
    served = loaded.signatures["serving_default"](text=tf.constant(texts[:4]))["score"].numpy()
    np.testing.assert_allclose(served, tuned.predict(texts[:4], verbose=0)[:, 0], atol=1e-5)
