"""LoRA and int8 quantisation, as keras-hub users reach for them: which
weights train, what a saved model holds, and that exports serve it."""

import json
import warnings

import numpy as np
import pytest
import tensorflow as tf
from support import TINY
from support import VOCAB
from support import sentiment_classifier

from convbert_keras import ConvBertBackbone
from convbert_keras import ConvBertTokenizer
from convbert_keras.models.convbert_task import load_task

TEXTS = ["the movie was good", "the plot was bad", "a great film", "hello world"]


def _perturb_lora(backbone):
    # keras' LoRA starts with B = 0, an update of nothing: give it one.
    rng = np.random.default_rng(0)
    for variable in backbone.weights:
        if "lora_kernel_b" in variable.path:
            variable.assign(rng.normal(size=variable.shape).astype("float32"))


def test_lora_adapts_attention_query_and_value_and_freezes_the_rest():
    classifier = sentiment_classifier()
    classifier.backbone.enable_lora(2)
    trainable = {v.path for v in classifier.backbone.trainable_weights}
    expected = {
        f"transformer_layer_{i}/attention/{layer}/{weight}"
        for i in range(classifier.backbone.num_layers)
        for layer in ("query_dense", "value_dense")
        for weight in ("bias", "lora_kernel_a", "lora_kernel_b")
    }
    assert trainable == expected
    # The head stays trainable: LoRA freezes the backbone only.
    assert {"pooled_dense/kernel", "logits/kernel"} <= {
        v.path for v in classifier.trainable_weights
    }
    frozen = {v.path: v.numpy() for v in classifier.backbone.weights if v.path not in expected}
    classifier.compile(optimizer="adam")
    classifier.fit(x=TEXTS, y=np.array([1, 0, 1, 0]), batch_size=4, epochs=2, verbose=0)
    for variable in classifier.backbone.weights:
        if variable.path in frozen:
            np.testing.assert_array_equal(variable.numpy(), frozen[variable.path])


def test_a_lora_model_saves_merged_and_its_lora_weights_round_trip(tmp_path):
    classifier = sentiment_classifier()
    base = classifier.predict(TEXTS, verbose=0)
    classifier.save_to_preset(str(tmp_path / "base"))
    classifier.backbone.enable_lora(2)
    _perturb_lora(classifier.backbone)
    # Functions traced before `enable_lora` read the kernels without it:
    # compile again, as keras-hub says to after enabling LoRA.
    classifier.compile()
    adapted = classifier.predict(TEXTS, verbose=0)
    assert np.abs(adapted - base).max() > 1e-4

    # A preset holds the merged weights: it loads as a plain model.
    classifier.save_to_preset(str(tmp_path / "merged"))
    merged = load_task(str(tmp_path / "merged"))
    assert not merged.backbone.transformer_layers[0].attention.query_dense.lora_enabled
    np.testing.assert_allclose(merged.predict(TEXTS, verbose=0), adapted, atol=1e-6)

    # Only the LoRA factors, onto the same base model.
    classifier.backbone.save_lora_weights(str(tmp_path / "adapter.lora.h5"))
    other = load_task(str(tmp_path / "base"))
    other.backbone.enable_lora(2)
    other.backbone.load_lora_weights(str(tmp_path / "adapter.lora.h5"))
    other.compile()
    # The head is not part of the LoRA file: copy it as a user would.
    for name in ("pooled_dense", "output_dense"):
        getattr(other, name).set_weights(getattr(classifier, name).get_weights())
    np.testing.assert_allclose(other.predict(TEXTS, verbose=0), adapted, atol=1e-6)


def test_unknown_lora_targets_are_refused():
    from convbert_keras.training.finetuning import FinetuneConfig
    from convbert_keras.training.finetuning import _enable_lora

    backbone = ConvBertBackbone(**TINY)
    with pytest.raises(ValueError, match=r"no layer named \['qury_dense'\]"):
        _enable_lora(backbone, 2, ["qury_dense", "value_dense"])
    with pytest.raises(ValueError, match="`lora_rank` must be 0"):
        FinetuneConfig(size="small", lora_rank=-1).resolved()
    with pytest.raises(ValueError, match="`lora_targets` goes with a positive `lora_rank`"):
        FinetuneConfig(size="small", lora_targets=("query_dense",)).resolved()


@pytest.mark.slow
def test_fine_tuning_with_lora_changes_only_the_targets_and_the_head(tmp_path):
    from convbert_keras.data.finetune_data import FinetuneData
    from convbert_keras.training.finetuning import FinetuneConfig
    from convbert_keras.training.finetuning import finetune

    start = str(tmp_path / "start")
    backbone = ConvBertBackbone(**TINY)
    backbone.save_to_preset(start)
    ConvBertTokenizer(vocabulary=VOCAB).save_to_preset(start)
    texts = TEXTS * 4
    labels = np.array([1, 0, 1, 0] * 4, "int32")
    data = FinetuneData(
        "classification", (texts, labels), {"validation": (texts, labels)}, 2, ("accuracy",)
    )
    settings = dict(
        preset=start,
        epochs=2,
        batch_size=4,
        learning_rate=1e-2,
        sequence_length=16,
        lora_rank=2,
        lora_targets=("value_dense", "kernel_dense"),
        jit_compile=False,
    )
    finetune(data, str(tmp_path / "run"), FinetuneConfig(**settings), verbose=0)
    with open(tmp_path / "run" / "run_config.json", encoding="utf-8") as f:
        recorded = json.load(f)
    assert (recorded["lora_rank"], recorded["lora_targets"]) == (2, ["value_dense", "kernel_dense"])
    tuned = load_task(str(tmp_path / "run" / "preset")).backbone
    changed = {
        v.path
        for v, w in zip(tuned.weights, backbone.weights)
        if not np.array_equal(v.numpy(), w.numpy())
    }
    targets = {
        f"transformer_layer_{i}/attention/{path}/{weight}"
        for i in range(TINY["num_layers"])
        for path in ("value_dense", "span_dynamic_conv/kernel_dense")
        for weight in ("kernel", "bias")
    }
    # The merged kernels and the biases of the targets moved; nothing else.
    assert changed == targets


def test_int8_quantisation_stays_close_and_exports(tmp_path):
    from convbert_keras.export.saved_model import export_saved_model

    classifier = sentiment_classifier()
    before = classifier.predict(TEXTS, verbose=0)
    with warnings.catch_warnings():
        # Layers without weights to quantise (norms, dropout) say so, each.
        warnings.simplefilter("ignore", UserWarning)
        classifier.quantize("int8")
    quantized = {v.path for v in classifier.weights if v.dtype == "int8"}
    assert "transformer_layer_0/attention/query_dense/kernel" in quantized
    assert "transformer_layer_0/attention/span_dynamic_conv/kernel_dense/kernel" in quantized
    after = classifier.predict(TEXTS, verbose=0)
    # Per-channel int8 on a tiny model: logits move by a few hundredths of
    # their scale, not more.
    assert 0 < np.abs(after - before).max() < 0.05 * np.abs(before).max() + 1e-4
    path = export_saved_model(classifier, str(tmp_path / "exported"))
    served = tf.saved_model.load(path).signatures["serving_default"](text=tf.constant(TEXTS))
    np.testing.assert_allclose(
        served["probabilities"].numpy(), tf.nn.softmax(after).numpy(), atol=1e-6
    )
