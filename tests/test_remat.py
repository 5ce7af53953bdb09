"""`remat=True`: the same gradients, with dropout, from less memory.

Rematerialisation computes each encoder layer again in the backward pass.
It is only right if the recomputation drops the same elements as the
forward pass; the negative control shows that a mask drawn afresh in the
recomputation changes the gradients, so the equality is not vacuous.
"""

import keras
import numpy as np
import pytest

from convbert_keras import ConvBertBackbone
from convbert_keras.layers.dropout import HashDropout

CONFIG = dict(
    vocabulary_size=60,
    num_layers=2,
    num_heads=4,
    hidden_dim=32,
    embedding_dim=16,
    intermediate_dim=64,
    # High, so that a wrong mask moves the gradients a lot.
    dropout=0.3,
    max_sequence_length=16,
)


def loss_and_gradients(remat):
    import tensorflow as tf

    keras.utils.set_random_seed(3)
    model = ConvBertBackbone(**CONFIG, remat=remat)
    rng = np.random.default_rng(0)
    inputs = {
        "token_ids": tf.constant(rng.integers(1, 60, (3, 12)), "int32"),
        "segment_ids": tf.constant(rng.integers(0, 2, (3, 12)), "int32"),
        "padding_mask": tf.constant([[1] * 12, [1] * 9 + [0] * 3, [1] * 5 + [0] * 7], "int32"),
    }
    weights = tf.sin(tf.range(CONFIG["hidden_dim"], dtype="float32"))

    # Compiled, as Keras trains: XLA is where a recomputation could be
    # merged back into the forward pass.
    @tf.function(jit_compile=True)
    def step():
        with tf.GradientTape() as tape:
            outputs = model(inputs, training=True)["sequence_output"]
            loss = tf.reduce_sum(outputs * weights)
        return loss, tape.gradient(loss, model.trainable_variables)

    loss, gradients = step()
    return float(loss), [tf.convert_to_tensor(g).numpy() for g in gradients]


def largest_difference(a, b):
    """The largest difference between two gradient lists, as a fraction of
    their largest element (the key biases' gradients are zero in exact
    arithmetic: per variable, rounding noise would be all there is)."""
    scale = max(np.abs(x).max() for x in a)
    return max(np.abs(x - y).max() for x, y in zip(a, b, strict=True)) / scale


def test_remat_gives_the_gradients_of_the_plain_model_with_dropout():
    loss, gradients = loss_and_gradients(remat=False)
    remat_loss, remat_gradients = loss_and_gradients(remat=True)
    assert remat_loss == pytest.approx(loss, rel=1e-6)
    # Measured: 7e-8 (float32 rounding).
    assert largest_difference(gradients, remat_gradients) < 1e-6


def test_remat_with_masks_drawn_again_in_the_recomputation_gets_other_gradients(monkeypatch):
    """The negative control: without the seeds passed in, every dropout in
    the recomputed layer draws a fresh mask."""
    loss, gradients = loss_and_gradients(remat=False)
    monkeypatch.setattr(HashDropout, "next_seed", lambda self: None)
    wrong_loss, wrong_gradients = loss_and_gradients(remat=True)
    # The forward pass is the same (its masks come from the same draws)...
    assert wrong_loss == pytest.approx(loss, rel=1e-6)
    # ...but the backward pass used other masks. Measured: 0.14.
    assert largest_difference(gradients, wrong_gradients) > 1e-2


def test_remat_is_in_the_config_and_off_by_default():
    assert ConvBertBackbone(**CONFIG).get_config()["remat"] is False
    model = ConvBertBackbone(**CONFIG, remat=True)
    restored = ConvBertBackbone.from_config(model.get_config())
    assert restored.get_config()["remat"] is True
    assert all(layer.remat for layer in restored.transformer_layers)


def test_remat_outside_training_is_the_plain_forward_pass():
    keras.utils.set_random_seed(1)
    plain = ConvBertBackbone(**CONFIG)
    remat = ConvBertBackbone(**CONFIG, remat=True)
    remat.set_weights(plain.get_weights())
    inputs = {
        "token_ids": np.arange(1, 13, dtype="int32")[None],
        "segment_ids": np.zeros((1, 12), "int32"),
        "padding_mask": np.ones((1, 12), "int32"),
    }
    np.testing.assert_array_equal(
        remat.predict_on_batch(inputs)["sequence_output"],
        plain.predict_on_batch(inputs)["sequence_output"],
    )


def test_remat_on_another_backend_is_refused_with_the_fix(monkeypatch):
    monkeypatch.setattr(keras.config, "backend", lambda: "jax")
    with pytest.raises(ValueError, match="TensorFlow backend.*KERAS_BACKEND=tensorflow"):
        ConvBertBackbone(**CONFIG, remat=True)


def test_a_saved_preset_loads_with_remat(tmp_path):
    plain = ConvBertBackbone(**CONFIG)
    plain.save_to_preset(str(tmp_path))
    loaded = ConvBertBackbone.from_preset(str(tmp_path), remat=True)
    assert all(layer.remat for layer in loaded.transformer_layers)
    for mine, theirs in zip(plain.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
