import keras
import numpy as np
import numpy_reference as ref
import pytest

from convbert_keras import ConvBertEncoderLayer
from convbert_keras import GroupedDense
from convbert_keras import MixedAttention
from convbert_keras import SpanDynamicConv
from convbert_keras.layers.span_dynamic_conv import depthwise_conv
from convbert_keras.layers.span_dynamic_conv import dynamic_depthwise_conv

RNG = np.random.default_rng(0)


def randn(*shape):
    return RNG.standard_normal(shape).astype("float32")


def randomize(layer, scale=0.3):
    """Random values in every weight, biases and LayerNorm included."""
    for weight in layer.weights:
        weight.assign(randn(*weight.shape) * scale + (1.0 if "gamma" in weight.path else 0.0))


def conv_weights(conv):
    w = {
        "kernel_kernel": conv.kernel_dense.kernel.numpy(),
        "kernel_bias": conv.kernel_dense.bias.numpy(),
        "value_kernel": conv.conv_value_dense.kernel.numpy(),
        "value_bias": conv.conv_value_dense.bias.numpy(),
    }
    if conv.conv_type == "span":
        w.update(
            # SeparableConv1D layouts: depthwise (K, H, 1), pointwise (1, H, A).
            depthwise=conv.key_depthwise_kernel.numpy()[..., None],
            pointwise=conv.key_pointwise_dense.kernel.numpy()[None],
            key_bias=conv.key_pointwise_dense.bias.numpy(),
        )
    return w


def dense(x, layer):
    return x @ layer.kernel.numpy() + layer.bias.numpy()


def numpy_mixed_attention(layer, x, padding_mask):
    query = dense(x, layer.query_dense)
    key = dense(x, layer.key_dense)
    value = dense(x, layer.value_dense)
    heads, d = layer.attention_heads, layer.head_dim
    context = ref.attention(query, key, value, heads, d, padding_mask)
    if layer.conv_type != "none":
        conv = layer.span_dynamic_conv
        conv_out = ref.span_dynamic_conv(
            x,
            query,
            conv_weights(conv),
            heads,
            d,
            conv.kernel_size,
            span=conv.conv_type == "span",
        )
        context = np.concatenate([context, conv_out], axis=2)
    return dense(context.reshape(*x.shape[:2], -1), layer.output_dense)


def test_grouped_dense_matches_per_group_matmul():
    layer = GroupedDense(units=12, num_groups=3)
    x = randn(2, 5, 9)
    y = layer(x).numpy()
    kernel, bias = layer.kernel.numpy(), layer.bias.numpy()
    assert kernel.shape == (3, 3, 4)
    expected = (
        np.concatenate([x[..., 3 * g : 3 * g + 3] @ kernel[g] for g in range(3)], axis=-1) + bias
    )
    np.testing.assert_allclose(y, expected, atol=1e-5)


def test_grouped_dense_one_group_is_dense():
    layer = GroupedDense(units=6, num_groups=1)
    x = randn(4, 8)
    np.testing.assert_allclose(
        layer(x).numpy(), x @ layer.kernel.numpy()[0] + layer.bias.numpy(), atol=1e-5
    )


def test_grouped_dense_rejects_indivisible_widths():
    with pytest.raises(ValueError, match="divisible by `num_groups`"):
        GroupedDense(units=10, num_groups=3)
    with pytest.raises(ValueError, match=r"input width \(10\)"):
        GroupedDense(units=6, num_groups=3)(randn(2, 10))


@pytest.mark.parametrize("kernel_size", [1, 3, 9])
def test_shifted_slices_equal_unfold(kernel_size):
    heads, d = 3, 4
    values = randn(2, 7, heads * d)
    kernels = ref.softmax(randn(2, 7, heads, kernel_size))
    expected = ref.light_conv_unfold(values, kernels, heads, d)
    got = dynamic_depthwise_conv(values.reshape(2, 7, heads, d), kernels)
    np.testing.assert_allclose(np.asarray(got), expected, atol=1e-5)


def test_shifted_slices_hand_computed():
    # One head, width 1, kernel 3 of weights (a, b, c): y[t] = a x[t-1] + b x[t] + c x[t+1].
    values = np.array([1.0, 2.0, 3.0, 4.0], "float32").reshape(1, 4, 1, 1)
    kernels = np.tile(np.array([0.2, 0.5, 0.3], "float32"), (1, 4, 1, 1))
    got = np.asarray(dynamic_depthwise_conv(values, kernels)).ravel()
    np.testing.assert_allclose(got, [1.1, 2.1, 3.1, 2.6], atol=1e-6)


@pytest.mark.parametrize("conv_type", ["span", "dynamic"])
def test_span_dynamic_conv_matches_numpy(conv_type):
    conv = SpanDynamicConv(num_heads=2, head_dim=4, kernel_size=5, conv_type=conv_type)
    x, q = randn(2, 6, 12), randn(2, 6, 8)
    conv(x, q)
    randomize(conv)
    expected = ref.span_dynamic_conv(x, q, conv_weights(conv), 2, 4, 5, span=conv_type == "span")
    np.testing.assert_allclose(conv(x, q).numpy(), expected, atol=1e-5)
    assert hasattr(conv, "key_pointwise_dense") == (conv_type == "span")


def test_span_key_equals_keras_separable_conv1d():
    conv = SpanDynamicConv(num_heads=2, head_dim=4, kernel_size=9)
    x = randn(2, 5, 16)
    conv(x, randn(2, 5, 8))
    randomize(conv)
    assert conv.key_depthwise_kernel.shape == (9, 16)
    assert conv.key_pointwise_dense.kernel.shape == (16, 8)
    separable = keras.layers.SeparableConv1D(8, 9, padding="same")
    separable.build((None, None, 16))
    separable.set_weights(
        [
            conv.key_depthwise_kernel.numpy()[..., None],
            conv.key_pointwise_dense.kernel.numpy()[None],
            conv.key_pointwise_dense.bias.numpy(),
        ]
    )
    ours = conv.key_pointwise_dense(depthwise_conv(x, conv.key_depthwise_kernel))
    np.testing.assert_allclose(ours.numpy(), separable(x).numpy(), atol=1e-5)
    assert conv.kernel_dense.kernel.shape == (8, 2 * 9)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(kernel_size=4), "odd"),
        (dict(conv_type="light"), "Unknown `conv_type`"),
        (dict(conv_type="none"), "'none' means no convolution"),
    ],
)
def test_span_dynamic_conv_rejects_bad_config(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SpanDynamicConv(num_heads=2, head_dim=4, **kwargs)


@pytest.mark.parametrize(
    "conv_type, num_heads, head_ratio, expected_heads",
    [
        ("span", 4, 2, 2),
        ("dynamic", 4, 2, 2),
        ("none", 4, 2, 4),
        ("span", 4, 3, 1),
        ("span", 2, 4, 1),
    ],
)
def test_mixed_attention_matches_numpy(conv_type, num_heads, head_ratio, expected_heads):
    layer = MixedAttention(
        num_heads=num_heads, head_ratio=head_ratio, conv_kernel_size=3, conv_type=conv_type
    )
    x = randn(3, 7, 16)
    mask = np.array([[1] * 7, [1] * 5 + [0] * 2, [1] * 2 + [0] * 5], "int32")
    layer(x, padding_mask=mask)
    randomize(layer)
    assert layer.attention_heads == expected_heads
    assert layer.head_dim == 16 // num_heads
    got = layer(x, padding_mask=mask).numpy()
    np.testing.assert_allclose(got, numpy_mixed_attention(layer, x, mask), atol=1e-4)


def test_mixed_attention_rejects_indivisible_hidden():
    with pytest.raises(
        ValueError, match=r"`hidden_dim` \(10\) must be divisible by `num_heads` \(4\)"
    ):
        MixedAttention(num_heads=4)(randn(1, 3, 10))


def test_mixed_attention_names_for_lora():
    layer = MixedAttention(num_heads=4)
    layer(randn(1, 3, 16))
    names = {sub.name for sub in layer._flatten_layers(include_self=False)}
    assert {"query_dense", "value_dense", "key_dense", "output_dense"} <= names


@pytest.mark.parametrize("num_groups", [1, 2])
def test_encoder_layer_matches_numpy(num_groups):
    layer = ConvBertEncoderLayer(
        num_heads=4, intermediate_dim=32, conv_kernel_size=5, num_groups=num_groups
    )
    x = randn(2, 6, 16)
    mask = np.array([[1] * 6, [1] * 4 + [0] * 2], "int32")
    layer(x, padding_mask=mask)
    randomize(layer)
    attended = numpy_mixed_attention(layer.attention, x, mask)
    ln1 = layer.attention_layer_norm
    h = ref.layer_norm(x + attended, ln1.gamma.numpy(), ln1.beta.numpy())

    def ffn(t, sub):
        kernel = sub.kernel.numpy()
        if kernel.ndim == 2:
            return t @ kernel + sub.bias.numpy()
        g, gin = kernel.shape[:2]
        return (
            np.concatenate([t[..., i * gin : (i + 1) * gin] @ kernel[i] for i in range(g)], -1)
            + sub.bias.numpy()
        )

    f = ffn(ref.gelu(ffn(h, layer.feedforward_intermediate_dense)), layer.feedforward_output_dense)
    ln2 = layer.feedforward_layer_norm
    expected = ref.layer_norm(h + f, ln2.gamma.numpy(), ln2.beta.numpy())
    np.testing.assert_allclose(layer(x, padding_mask=mask).numpy(), expected, atol=1e-4)
    kind = GroupedDense if num_groups > 1 else keras.layers.Dense
    assert type(layer.feedforward_intermediate_dense) is kind


def test_encoder_layer_dropout_only_in_training():
    layer = ConvBertEncoderLayer(num_heads=4, intermediate_dim=32, dropout=0.5)
    x = randn(2, 6, 16)
    np.testing.assert_allclose(layer(x).numpy(), layer(x, training=False).numpy())
    assert not np.allclose(layer(x, training=True).numpy(), layer(x).numpy())


@pytest.mark.parametrize(
    "make",
    [
        lambda: GroupedDense(units=8, num_groups=2),
        lambda: SpanDynamicConv(num_heads=2, head_dim=4, kernel_size=3, conv_type="dynamic"),
        lambda: MixedAttention(
            num_heads=4, head_ratio=2, conv_kernel_size=7, dropout=0.2, mask_padding_in_conv=True
        ),
        lambda: ConvBertEncoderLayer(
            num_heads=4, intermediate_dim=32, num_groups=2, conv_type="none"
        ),
    ],
)
def test_layer_config_round_trip(make):
    layer = make()
    config = layer.get_config()
    restored = layer.__class__.from_config(config)
    assert restored.get_config() == config
    # Registered: deserializes by name, not only through the class.
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(revived) is type(layer) and revived.get_config() == config


@pytest.mark.parametrize("jit", [False, True])
def test_hash_dropout_keeps_expected_fraction_and_scales(jit):
    import tensorflow as tf

    from convbert_keras import HashDropout

    layer = HashDropout(0.25, seed=3)
    x = np.ones((200, 500), "float32")
    run = tf.function(lambda t: layer(t, training=True), jit_compile=jit)
    first, second = run(x).numpy(), run(x).numpy()
    np.testing.assert_allclose(np.unique(first), [0.0, 1.0 / 0.75], rtol=1e-6)
    assert abs((first == 0).mean() - 0.25) < 0.01
    # Every row and column drops its share: no stripes from the index hash.
    assert np.abs((first == 0).mean(axis=1) - 0.25).max() < 0.1
    assert np.abs((first == 0).mean(axis=0) - 0.25).max() < 0.15
    # Neighbouring elements are independent.
    dropped = (first == 0).ravel()
    assert abs(np.mean(dropped[1:] & dropped[:-1]) - 0.25**2) < 0.01
    # A fresh mask every call; the identity outside training.
    assert (first != second).mean() > 0.2
    np.testing.assert_array_equal(layer(x, training=False), x)


def test_gelu_exact_values_and_gradient():
    import tensorflow as tf

    from convbert_keras.layers.activations import gelu_exact

    x = tf.constant(np.linspace(-6, 6, 101), "float32")
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours = gelu_exact(x)
        keras_exact = keras.activations.gelu(x, approximate=False)
    np.testing.assert_allclose(ours, ref.gelu(x.numpy().astype("float64")), atol=1e-6)
    np.testing.assert_allclose(tape.gradient(ours, x), tape.gradient(keras_exact, x), atol=1e-5)


def test_gelu_exact_gradient_recomputes_the_cdf_under_xla():
    """The backward pass computes erf again from the input instead of
    keeping the forward's erf alive: two erf instructions in the compiled
    gradient, where XLA's common-subexpression elimination leaves one (the
    forward's, kept until the backward pass) when the recomputation is not
    made to depend on the upstream gradient."""
    import re

    import tensorflow as tf

    from convbert_keras.layers.activations import gelu_exact

    @tf.function(jit_compile=True)
    def value_and_gradient(x, weights):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(gelu_exact(x) * weights)
        return y, tape.gradient(y, x)

    x = tf.constant(np.linspace(-3, 3, 64), "float32")
    hlo = value_and_gradient.experimental_get_compiler_ir(x, x)(stage="optimized_hlo")
    assert len(re.findall(r" erf\(", hlo)) == 2


def test_grouped_dense_rejects_non_positive_groups():
    with pytest.raises(ValueError, match="`num_groups` must be a positive integer"):
        GroupedDense(units=4, num_groups=0)
