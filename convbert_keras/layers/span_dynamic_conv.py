import keras
from keras import ops

from convbert_keras.layers.initializers import clone_initializer

CONV_TYPES = ("span", "dynamic", "none")


def _check_conv_type(conv_type):
    if conv_type not in CONV_TYPES:
        raise ValueError(
            f"Unknown `conv_type` {conv_type!r}. Expected one of {CONV_TYPES}: "
            "'span' (span-based dynamic convolution, ConvBERT), 'dynamic' "
            "(kernel from the token alone) or 'none' (plain BERT attention)."
        )


def shifted_windows(values, kernel_size):
    """The `kernel_size` views `values[:, t + j - (K - 1) / 2]`, j = 0..K-1.

    Positions outside the sequence read zeros ("same" zero padding). Every
    convolution here is a weighted sum of these views: no `(.., K)` unfold
    tensor is ever built, and XLA fuses the sum into one pass.
    """
    half = (kernel_size - 1) // 2
    length = ops.shape(values)[1]
    pad = [(0, 0)] * len(values.shape)
    pad[1] = (half, half)
    padded = ops.pad(values, pad)
    return [padded[:, j : j + length] for j in range(kernel_size)]


def depthwise_conv(values, taps):
    """Static depthwise convolution: `values` `(B, L, C)`, `taps` `(K, C)`."""
    windows = shifted_windows(values, taps.shape[0])
    return sum(taps[j] * window for j, window in enumerate(windows))


def dynamic_depthwise_conv(values, kernels):
    """Convolves each position with its own kernel.

    `values` has shape `(B, L, heads, head_dim)` and `kernels`
    `(B, L, heads, K)`, `K` odd. Output position `t` of head `h` is
    `sum_j kernels[b, t, h, j] * values[b, t + j - (K - 1) / 2, h, :]`,
    with zeros outside the sequence. The references build a `(B, L, A, K)`
    "unfold" of the values first; summing `K` shifted slices gives the same
    numbers without that `K`-times larger tensor.
    """
    windows = shifted_windows(values, kernels.shape[-1])
    return sum(kernels[..., j : j + 1] * window for j, window in enumerate(windows))


@keras.saving.register_keras_serializable(package="convbert_keras")
class SpanDynamicConv(keras.layers.Layer):
    """Span-based dynamic convolution (SDConv), the conv half of ConvBERT.

    For every position this layer generates a convolution kernel over the
    `kernel_size` neighbouring tokens and applies it to a projection of the
    hidden states, head by head:

    - span-aware key: `Ks = SeparableConv1D(X)`: depthwise `kernel_size`
      taps per channel (zero "same" padding, weight `key_depthwise_kernel`
      of shape `(K, H)`), then a pointwise projection to
      `A = num_heads * head_dim` with one bias (`key_pointwise_dense`);
    - kernel: `softmax_K(reshape(Dense_{A -> heads*K}(Ks * Q)))`;
    - values: `U = Dense_{H -> A}(X)`;
    - output: `sum_j kernel[t, h, j] * U[t + j - (K-1)/2, h]`.

    With `conv_type="dynamic"` the kernel comes from the query alone
    (`Dense(Q)`, the paper's plain dynamic convolution ablation) and there is
    no span-aware key.

    Args:
        num_heads: int. Number of convolution heads.
        head_dim: int. Width of each head.
        kernel_size: int. Odd number of taps.
        conv_type: `"span"` (default) or `"dynamic"`.
        kernel_initializer: initializer for the dense kernels.
        depthwise_initializer: initializer of the depthwise taps.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        hidden_states: `(B, L, H)` layer input `X`.
        query: `(B, L, num_heads * head_dim)` attention query `Q`.
        padding_mask: optional `(B, L)`, 1 for tokens and 0 for padding. When
            given, padded positions are zeroed so they look exactly like
            positions beyond the sequence end (outputs for real tokens then do
            not depend on how much padding follows). The reference
            implementations do not do this.

    Returns: `(B, L, num_heads, head_dim)`.

    Example:
    ```python
    conv = SpanDynamicConv(num_heads=2, head_dim=64, kernel_size=9)
    x = np.random.rand(2, 16, 256).astype("float32")
    q = np.random.rand(2, 16, 128).astype("float32")
    y = conv(x, q)  # (2, 16, 2, 64)
    ```
    """

    def __init__(
        self,
        num_heads,
        head_dim,
        kernel_size=9,
        conv_type="span",
        kernel_initializer="glorot_uniform",
        depthwise_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_conv_type(conv_type)
        if conv_type == "none":
            raise ValueError(
                "`SpanDynamicConv` needs conv_type 'span' or 'dynamic'; "
                "'none' means no convolution layer at all."
            )
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(
                "`kernel_size` must be a positive odd integer so the window "
                f"is centred on the token. Received: kernel_size={kernel_size}"
            )
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.kernel_size = kernel_size
        self.conv_type = conv_type
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        if depthwise_initializer is None:
            depthwise_initializer = keras.initializers.TruncatedNormal(stddev=1.0 / kernel_size)
        self.depthwise_initializer = keras.initializers.get(depthwise_initializer)
        self.projection_dim = num_heads * head_dim

    def build(self, hidden_states_shape, query_shape=None, padding_mask_shape=None):
        if self.conv_type == "span":
            self.key_depthwise_kernel = self.add_weight(
                name="key_depthwise_kernel",
                shape=(self.kernel_size, hidden_states_shape[-1]),
                initializer=self.depthwise_initializer,
            )
            # Depthwise taps have no bias; the pointwise step is a Dense.
            self.key_pointwise_dense = keras.layers.Dense(
                self.projection_dim,
                kernel_initializer=clone_initializer(self.kernel_initializer),
                dtype=self.dtype_policy,
                name="key_pointwise_dense",
            )
            self.key_pointwise_dense.build(hidden_states_shape)
        self.kernel_dense = keras.layers.Dense(
            self.num_heads * self.kernel_size,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            dtype=self.dtype_policy,
            name="kernel_dense",
        )
        self.kernel_dense.build((None, None, self.projection_dim))
        self.conv_value_dense = keras.layers.Dense(
            self.projection_dim,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            dtype=self.dtype_policy,
            name="conv_value_dense",
        )
        self.conv_value_dense.build(hidden_states_shape)
        self.built = True

    def call(self, hidden_states, query, padding_mask=None):
        if padding_mask is not None:
            keep = ops.expand_dims(ops.cast(padding_mask, self.compute_dtype), -1)
            hidden_states = hidden_states * keep
        if self.conv_type == "span":
            span_keys = self.key_pointwise_dense(
                depthwise_conv(hidden_states, self.key_depthwise_kernel)
            )
            kernel_inputs = span_keys * query
        else:
            kernel_inputs = query
        logits = self.kernel_dense(kernel_inputs)
        logits = ops.reshape(logits, (*ops.shape(logits)[:-1], self.num_heads, self.kernel_size))
        # Softmax in float32 even under a mixed precision policy.
        kernels = ops.cast(ops.softmax(ops.cast(logits, "float32"), axis=-1), self.compute_dtype)
        values = self.conv_value_dense(hidden_states)
        if padding_mask is not None:
            # The projection's bias would leak into padded positions.
            values = values * keep
        values = ops.reshape(values, (*ops.shape(values)[:-1], self.num_heads, self.head_dim))
        return dynamic_depthwise_conv(values, kernels)

    def compute_output_shape(self, hidden_states_shape, query_shape=None, padding_mask_shape=None):
        return (*hidden_states_shape[:-1], self.num_heads, self.head_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "head_dim": self.head_dim,
                "kernel_size": self.kernel_size,
                "conv_type": self.conv_type,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "depthwise_initializer": keras.initializers.serialize(self.depthwise_initializer),
            }
        )
        return config
