import keras
import keras_hub
import numpy as np
import pytest

from convbert_keras import CONVBERT_CONFIGS
from convbert_keras import ConvBertBackbone
from convbert_keras import convbert_config

TINY = dict(
    vocabulary_size=50,
    num_layers=2,
    num_heads=4,
    hidden_dim=16,
    embedding_dim=8,
    intermediate_dim=32,
    conv_kernel_size=5,
    max_sequence_length=64,
)


def make_inputs(lengths, total, seed=0):
    rng = np.random.default_rng(seed)
    mask = np.array([[1] * n + [0] * (total - n) for n in lengths], "int32")
    tokens = rng.integers(1, 50, mask.shape).astype("int32") * mask
    segments = np.zeros_like(mask)
    segments[:, 3:] = 1
    return {"token_ids": tokens, "segment_ids": segments * mask, "padding_mask": mask}


def pad_to(inputs, total):
    extra = total - inputs["token_ids"].shape[1]
    return {k: np.pad(v, ((0, 0), (0, extra))) for k, v in inputs.items()}


@pytest.mark.parametrize(
    "size, expected",
    [("small", 13_143_768), ("medium-small", 17_475_888), ("base", 105_680_520)],
)
def test_published_parameter_counts(size, expected):
    assert ConvBertBackbone(**convbert_config(size)).count_params() == expected


def test_convbert_config_rejects_unknown_size():
    with pytest.raises(ValueError, match="Unknown ConvBERT size 'large'"):
        convbert_config("large")
    assert set(CONVBERT_CONFIGS) == {"small", "medium-small", "base"}


def test_outputs_and_pooled_is_cls_state():
    model = ConvBertBackbone(**TINY)
    inputs = make_inputs([7, 4], 7)
    out = model(inputs)
    assert out["sequence_output"].shape == (2, 7, 16)
    np.testing.assert_array_equal(out["pooled_output"], out["sequence_output"][:, 0])


def test_embedding_bottleneck_projection():
    assert ConvBertBackbone(**TINY).embeddings_projection is not None
    same = ConvBertBackbone(**dict(TINY, embedding_dim=16))
    assert same.embeddings_projection is None
    assert ConvBertBackbone(**dict(TINY, embedding_dim=None)).embedding_dim == 16


def _bert_weight_pairs(bert, ours):
    """(keras-hub BertBackbone variable, our variable) for every weight but
    BERT's pooler, which ConvBERT does not have."""
    pairs = [
        (bert.token_embedding.embeddings, ours.token_embedding.embeddings),
        (bert.position_embedding.position_embeddings, ours.position_embedding.position_embeddings),
        (bert.segment_embedding.embeddings, ours.segment_embedding.embeddings),
        (bert.embeddings_layer_norm.gamma, ours.embeddings_layer_norm.gamma),
        (bert.embeddings_layer_norm.beta, ours.embeddings_layer_norm.beta),
    ]
    for theirs, mine in zip(bert.transformer_layers, ours.transformer_layers):
        attention, mixed = theirs._self_attention_layer, mine.attention
        for a, b in [
            (attention._query_dense, mixed.query_dense),
            (attention._key_dense, mixed.key_dense),
            (attention._value_dense, mixed.value_dense),
            (attention._output_dense, mixed.output_dense),
            (theirs._feedforward_intermediate_dense, mine.feedforward_intermediate_dense),
            (theirs._feedforward_output_dense, mine.feedforward_output_dense),
        ]:
            pairs += [(a.kernel, b.kernel), (a.bias, b.bias)]
        for a, b in [
            (theirs._self_attention_layer_norm, mine.attention_layer_norm),
            (theirs._feedforward_layer_norm, mine.feedforward_layer_norm),
        ]:
            pairs += [(a.gamma, b.gamma), (a.beta, b.beta)]
    return pairs


def test_conv_type_none_is_keras_hub_bert():
    # Without the conv branch the encoder is BERT's: keras-hub's
    # BertBackbone with the same weights gives the same sequence output.
    # Weights far from initialisation (std 1.5/sqrt(fan_in)) so that every
    # one of them moves the output.
    config = dict(TINY, embedding_dim=16, conv_type="none", dropout=0.0)
    ours = ConvBertBackbone(**config)
    bert = keras_hub.models.BertBackbone(
        vocabulary_size=50,
        num_layers=2,
        num_heads=4,
        hidden_dim=16,
        intermediate_dim=32,
        max_sequence_length=64,
        dropout=0.0,
    )
    pairs = _bert_weight_pairs(bert, ours)
    assert len(pairs) == len(ours.weights) == len(bert.weights) - 2
    rng = np.random.default_rng(0)
    for theirs, mine in pairs:
        fan_in = theirs.shape[0] if len(theirs.shape) > 1 else 1
        value = rng.normal(0, 1.5 / np.sqrt(fan_in), theirs.shape)
        if "gamma" in theirs.path:
            value = 1 + 0.2 * rng.normal(size=theirs.shape)
        theirs.assign(value.astype("float32"))
        mine.assign(value.reshape(mine.shape).astype("float32"))
    # keras-hub's BERT uses tanh-approximate GELU; transformers' BERT and
    # ConvBERT (and so ours) the exact erf form.
    for layer in bert.transformer_layers:
        layer._feedforward_intermediate_dense.activation = keras.activations.gelu
    inputs = make_inputs([12, 9, 4], 12)
    expected = bert.predict_on_batch(inputs)["sequence_output"]
    got = ours.predict_on_batch(inputs)["sequence_output"]
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # And it is not BERT once the conv branch is on.
    mixed = ConvBertBackbone(**dict(config, conv_type="span", head_ratio=1))
    assert mixed.count_params() > ours.count_params()


@pytest.mark.parametrize("conv_type", ["span", "dynamic", "none"])
@pytest.mark.parametrize("head_ratio", [1, 2, 4])
def test_ablation_switches_build_and_run(conv_type, head_ratio):
    model = ConvBertBackbone(**dict(TINY, conv_type=conv_type, head_ratio=head_ratio, num_groups=2))
    out = model(make_inputs([5, 3], 6))["sequence_output"]
    assert out.shape == (2, 6, 16) and np.isfinite(out).all()


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(hidden_dim=18), r"`hidden_dim` \(18\) must be divisible by `num_heads` \(4\)"),
        (dict(conv_type="lightweight"), "Unknown `conv_type`"),
        (dict(num_layers=0), "`num_layers` must be a positive integer"),
        (dict(dropout=1.0), "`dropout` must be in"),
        (dict(num_groups=3), "divisible by `num_groups`"),
        (dict(conv_kernel_size=4), "odd"),
    ],
)
def test_bad_config_is_rejected_with_its_name(overrides, message):
    with pytest.raises(ValueError, match=message):
        ConvBertBackbone(**dict(TINY, **overrides))


def test_variable_sequence_lengths():
    model = ConvBertBackbone(**TINY)
    for length in (1, 5, 17, 64):
        out = model.predict_on_batch(make_inputs([length], length))
        assert out["sequence_output"].shape == (1, length, 16)


def test_padding_switch_on_makes_outputs_independent_of_padding():
    model = ConvBertBackbone(**dict(TINY, mask_padding_in_conv=True))
    inputs = make_inputs([6, 4], 6)
    short = model.predict_on_batch(inputs)["sequence_output"]
    long = model.predict_on_batch(pad_to(inputs, 20))["sequence_output"]
    np.testing.assert_allclose(long[0, :6], short[0, :6], atol=1e-5)
    np.testing.assert_allclose(long[1, :4], short[1, :4], atol=1e-5)


def test_padding_switch_off_keeps_reference_behaviour():
    # The references let padded positions feed the convolution: real-token
    # outputs move when padding is appended. The same weights with the switch
    # on do not move.
    off = ConvBertBackbone(**TINY)
    inputs = make_inputs([4], 4)
    short = off.predict_on_batch(inputs)["sequence_output"]
    long = off.predict_on_batch(pad_to(inputs, 12))["sequence_output"]
    assert np.abs(long[0, :4] - short[0, :4]).max() > 1e-3
    on = ConvBertBackbone(**dict(TINY, mask_padding_in_conv=True))
    on.set_weights(off.get_weights())
    np.testing.assert_allclose(on.predict_on_batch(inputs)["sequence_output"], short, atol=1e-5)


def test_config_round_trip():
    model = ConvBertBackbone(
        **dict(TINY, conv_type="dynamic", num_groups=2, mask_padding_in_conv=True)
    )
    config = model.get_config()
    restored = ConvBertBackbone.from_config(config)
    assert restored.get_config() == config
    assert restored.count_params() == model.count_params()


def test_reinitialize_top_layers_redraws_only_those_layers_at_initialisation():
    model = ConvBertBackbone(**TINY)
    # Far from any initial value, as after training.
    rng = np.random.default_rng(0)
    model.set_weights([3.0 + rng.normal(size=w.shape) for w in model.get_weights()])
    before = {w.path: keras.ops.convert_to_numpy(w) for w in model.weights}
    model.reinitialize_top_layers(0)
    assert all(np.array_equal(keras.ops.convert_to_numpy(w), before[w.path]) for w in model.weights)

    model.reinitialize_top_layers(1)
    top = model.transformer_layers[1]
    top_paths = {w.path for w in top.weights}
    for w in model.weights:
        value = keras.ops.convert_to_numpy(w)
        if w.path not in top_paths:
            np.testing.assert_array_equal(value, before[w.path], err_msg=w.path)
        elif w.path.endswith(("bias", "beta")):
            np.testing.assert_array_equal(value, 0.0, err_msg=w.path)
        elif w.path.endswith("gamma"):
            np.testing.assert_array_equal(value, 1.0, err_msg=w.path)
        elif w.path.endswith("depthwise_kernel"):
            assert 0 < np.abs(value).max() < 1, w.path
        else:
            # The truncated normal of std 0.02: within two deviations.
            assert 0 < np.abs(value).max() <= 0.04, w.path
    inputs = make_inputs([6, 3], 6)
    assert np.isfinite(model.predict_on_batch(inputs)["sequence_output"]).all()
    with pytest.raises(ValueError, match="between 0 and the model's 2 layers. Received: 3"):
        model.reinitialize_top_layers(3)


def test_keras_file_save_and_load(tmp_path):
    model = ConvBertBackbone(**dict(TINY, num_groups=2))
    inputs = make_inputs([6, 3], 6)
    expected = model.predict_on_batch(inputs)["sequence_output"]
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, ConvBertBackbone)
    np.testing.assert_allclose(
        restored.predict_on_batch(inputs)["sequence_output"], expected, atol=1e-6
    )


def test_preset_round_trip(tmp_path):
    model = ConvBertBackbone(**TINY)
    inputs = make_inputs([6, 3], 6)
    expected = model.predict_on_batch(inputs)["sequence_output"]
    model.save_to_preset(str(tmp_path))
    for loader in (ConvBertBackbone, keras_hub.models.Backbone):
        restored = loader.from_preset(str(tmp_path))
        assert isinstance(restored, ConvBertBackbone)
        np.testing.assert_allclose(
            restored.predict_on_batch(inputs)["sequence_output"], expected, atol=1e-6
        )


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_is_finite_and_close(policy):
    full = ConvBertBackbone(**dict(TINY, num_groups=2))
    mixed = ConvBertBackbone(**dict(TINY, num_groups=2, dtype=policy))
    mixed.set_weights(full.get_weights())
    inputs = make_inputs([6, 2], 6)
    expected = full.predict_on_batch(inputs)["sequence_output"]
    got = mixed.predict_on_batch(inputs)["sequence_output"]
    assert np.isfinite(got).all()
    assert mixed.transformer_layers[0].attention.compute_dtype == policy.split("_")[1]
    # Half precision keeps about 3 (bf16: 2) significant digits.
    np.testing.assert_allclose(np.asarray(got, "float32"), expected, atol=0.1)


def test_lora_targets_attention_projections():
    model = ConvBertBackbone(**TINY)
    model.enable_lora(rank=2)
    trainable = {w.path for w in model.trainable_weights}
    assert any("query_dense" in p and "lora" in p for p in trainable)
    assert any("value_dense" in p and "lora" in p for p in trainable)
    assert not any("span_dynamic_conv" in p for p in trainable)


def test_training_reduces_loss():
    model = ConvBertBackbone(**dict(TINY, dropout=0.0))
    inputs = make_inputs([6, 6, 4, 5], 6)
    outputs = keras.layers.Dense(2)(model.output["pooled_output"])
    classifier = keras.Model(model.input, outputs)
    classifier.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    labels = np.array([0, 1, 0, 1])
    history = classifier.fit(inputs, labels, epochs=15, batch_size=4, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]


def test_a_keras_preset_takes_another_max_sequence_length(tmp_path):
    """The rule of transformers checkpoints (`resize_positions`) for our
    own presets: extended by tiling the learned rows, or cut."""
    saved = ConvBertBackbone(**dict(TINY, max_sequence_length=8))
    rng = np.random.default_rng(0)
    learned = rng.normal(size=(8, saved.embedding_dim)).astype("float32")
    saved.position_embedding.position_embeddings.assign(learned)
    saved.save_to_preset(str(tmp_path))
    inputs = {
        "token_ids": np.array([[2, 7, 9, 4, 3, 0]], "int32"),
        "segment_ids": np.zeros((1, 6), "int32"),
        "padding_mask": np.array([[1, 1, 1, 1, 1, 0]], "int32"),
    }
    expected = saved.predict_on_batch(inputs)["sequence_output"]

    longer = ConvBertBackbone.from_preset(str(tmp_path), max_sequence_length=20)
    assert longer.max_sequence_length == 20
    np.testing.assert_array_equal(
        np.asarray(longer.position_embedding.position_embeddings),
        np.concatenate([learned, learned, learned[:4]]),
    )
    np.testing.assert_allclose(
        longer.predict_on_batch(inputs)["sequence_output"], expected, rtol=0, atol=1e-6
    )
    shorter = ConvBertBackbone.from_preset(str(tmp_path), max_sequence_length=6)
    np.testing.assert_array_equal(
        np.asarray(shorter.position_embedding.position_embeddings), learned[:6]
    )
    np.testing.assert_allclose(
        shorter.predict_on_batch(inputs)["sequence_output"], expected, rtol=0, atol=1e-6
    )
    # Another argument with it reaches the backbone too.
    assert ConvBertBackbone.from_preset(str(tmp_path), max_sequence_length=20, remat=True).remat
