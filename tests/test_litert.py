"""LiteRT export of the token-id signature: builtin ops only, Keras' logits."""

import numpy as np
import pytest
import tensorflow as tf
from support import keras_logits
from support import sentiment_classifier
from support import spread

from convbert_keras.export.litert import export_litert

TEXTS = ["the movie was good.", "a bad plot!", "", "it was a good movie and a bad plot."]


def run_litert(path, ids):
    interpreter = tf.lite.Interpreter(model_path=path)
    runner = interpreter.get_signature_runner("predict_token_ids")
    inputs = {k: np.asarray(v, "int32") for k, v in ids.items()}
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    return runner(**inputs)["logits"], ops


def test_litert_logits_match_keras_with_builtin_ops_only(tmp_path):
    model = sentiment_classifier()
    spread(model)
    path = export_litert(model, str(tmp_path / "sentiment.tflite"), batch_size=len(TEXTS))
    ids = model.preprocessor(TEXTS)
    expected = keras_logits(model, TEXTS)
    logits, ops = run_litert(path, ids)
    assert logits.shape == (len(TEXTS), 2)
    print(f"largest difference {np.abs(logits - expected).max():.1e}; ops {sorted(ops)}")
    np.testing.assert_allclose(logits, expected, atol=1e-4)
    # No Flex (TensorFlow) ops: the stock interpreter runs it.
    assert not any(op.startswith("Flex") or op == "CUSTOM" for op in ops)
    assert 1 <= np.abs(expected).max()  # the spread weights make logits of several units

    # Negative control: the convolution's key taps reversed in the Keras
    # model only; the comparison must see it.
    conv = model.backbone.transformer_layers[0].attention.span_dynamic_conv
    conv.key_depthwise_kernel.assign(conv.key_depthwise_kernel.numpy()[::-1])
    assert np.abs(logits - keras_logits(model, TEXTS)).max() > 1e-3


def test_litert_export_settings_are_checked(tmp_path):
    model = sentiment_classifier()
    path = str(tmp_path / "m.tflite")
    with pytest.raises(ValueError, match="between 1 and the model's 32 positions. Received: 33"):
        export_litert(model, path, sequence_length=33)
    with pytest.raises(ValueError, match="`batch_size` must be positive"):
        export_litert(model, path, batch_size=0)
    with pytest.raises(ValueError, match="is not a ConvBERT task model"):
        export_litert(model.backbone, path)
    model.preprocessor = None
    with pytest.raises(ValueError, match="pass `sequence_length`"):
        export_litert(model, path)
