import math

import keras
from keras import ops

from convbert_keras.layers.dropout import HashDropout
from convbert_keras.layers.initializers import clone_initializer
from convbert_keras.layers.span_dynamic_conv import SpanDynamicConv
from convbert_keras.layers.span_dynamic_conv import _check_conv_type


def attention_layout(hidden_dim, num_heads, head_ratio, conv_type):
    """Returns `(attention_heads, head_dim)` of ConvBERT's mixed attention.

    Self-attention keeps `max(1, num_heads // head_ratio)` heads of width
    `hidden_dim // num_heads` (the original code's rule; Hugging Face's
    PyTorch port uses another width when `head_ratio != 2`). Without a conv
    branch all `num_heads` heads stay, which is BERT self-attention.
    """
    _check_conv_type(conv_type)
    if num_heads < 1 or hidden_dim % num_heads:
        raise ValueError(
            f"`hidden_dim` ({hidden_dim}) must be divisible by `num_heads` ({num_heads})."
        )
    if head_ratio < 1:
        raise ValueError(f"`head_ratio` must be a positive integer. Received: {head_ratio}")
    head_dim = hidden_dim // num_heads
    if conv_type == "none":
        return num_heads, head_dim
    return max(1, num_heads // head_ratio), head_dim


@keras.saving.register_keras_serializable(package="convbert_keras")
class MixedAttention(keras.layers.Layer):
    """ConvBERT's mixed attention: reduced self-attention next to SDConv.

    Self-attention runs with `Nr = max(1, num_heads // head_ratio)` heads of
    width `d = hidden_dim // num_heads`; a `SpanDynamicConv` with the same
    heads and width runs beside it, sharing the query. Both outputs are
    concatenated per head (attention heads first, then conv heads) to width
    `2 * Nr * d` and projected back to `hidden_dim`. With
    `conv_type="none"` it is plain multi-head self-attention with all
    `num_heads` heads.

    Args:
        num_heads: int. Heads of the full-size model (before the reduction).
        head_ratio: int. The paper's gamma; 2 in every published model.
        conv_kernel_size: int. Odd SDConv kernel width.
        conv_type: `"span"`, `"dynamic"` or `"none"`.
        dropout: float. Dropout on the attention probabilities.
        mask_padding_in_conv: bool. If `True`, padded positions are zeroed
            before the conv branch, making outputs independent of the amount
            of padding. `False` (default) matches the reference code, where
            padded tokens feed the convolution of their neighbours.
        kernel_initializer: initializer of the projections.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        hidden_states: `(B, L, H)`.
        padding_mask: optional `(B, L)`, 1 for tokens, 0 for padding.
        training: bool, enables dropout.
        dropout_seed: optional seed of the probabilities' dropout mask, from
            `probs_dropout.next_seed()` (see `HashDropout`).

    Returns: `(B, L, H)`.

    Example:
    ```python
    attention = MixedAttention(num_heads=4, head_ratio=2, conv_kernel_size=9)
    x = np.random.rand(2, 16, 256).astype("float32")
    y = attention(x, padding_mask=np.ones((2, 16), "int32"))  # (2, 16, 256)
    ```
    """

    def __init__(
        self,
        num_heads,
        head_ratio=2,
        conv_kernel_size=9,
        conv_type="span",
        dropout=0.0,
        mask_padding_in_conv=False,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check_conv_type(conv_type)
        self.num_heads = num_heads
        self.head_ratio = head_ratio
        self.conv_kernel_size = conv_kernel_size
        self.conv_type = conv_type
        self.dropout = dropout
        self.mask_padding_in_conv = mask_padding_in_conv
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def _dense(self, units, name, input_dim):
        layer = keras.layers.Dense(
            units,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            dtype=self.dtype_policy,
            name=name,
        )
        layer.build((None, None, input_dim))
        return layer

    def build(self, hidden_states_shape, padding_mask_shape=None):
        hidden_dim = hidden_states_shape[-1]
        self.attention_heads, self.head_dim = attention_layout(
            hidden_dim, self.num_heads, self.head_ratio, self.conv_type
        )
        projection_dim = self.attention_heads * self.head_dim
        self.query_dense = self._dense(projection_dim, "query_dense", hidden_dim)
        self.key_dense = self._dense(projection_dim, "key_dense", hidden_dim)
        self.value_dense = self._dense(projection_dim, "value_dense", hidden_dim)
        self.concat_dim = projection_dim
        if self.conv_type != "none":
            self.span_dynamic_conv = SpanDynamicConv(
                num_heads=self.attention_heads,
                head_dim=self.head_dim,
                kernel_size=self.conv_kernel_size,
                conv_type=self.conv_type,
                kernel_initializer=self.kernel_initializer,
                dtype=self.dtype_policy,
                name="span_dynamic_conv",
            )
            self.span_dynamic_conv.build(hidden_states_shape, (None, None, projection_dim))
            self.concat_dim = 2 * projection_dim
        self.probs_dropout = HashDropout(
            self.dropout, dtype=self.dtype_policy, name="probs_dropout"
        )
        self.output_dense = self._dense(hidden_dim, "output_dense", self.concat_dim)
        self.built = True

    def _split_heads(self, x):
        return ops.reshape(x, (*ops.shape(x)[:-1], self.attention_heads, self.head_dim))

    def call(self, hidden_states, padding_mask=None, training=None, dropout_seed=None):
        query = self.query_dense(hidden_states)
        key = self._split_heads(self.key_dense(hidden_states))
        value = self._split_heads(self.value_dense(hidden_states))
        scaled_query = self._split_heads(query) * ops.cast(
            1.0 / math.sqrt(self.head_dim), self.compute_dtype
        )
        scores = ops.einsum("bqhd,bkhd->bhqk", scaled_query, key)
        # Scores, mask and softmax in float32: the mask constant and the
        # normalisation stay exact under float16.
        scores = ops.cast(scores, "float32")
        if padding_mask is not None:
            key_mask = ops.cast(padding_mask, "float32")[:, None, None, :]
            scores = scores + (1.0 - key_mask) * -1e9
        probs = ops.softmax(scores, axis=-1)
        probs = self.probs_dropout(probs, training=training, seed=dropout_seed)
        context = ops.einsum("bhqk,bkhd->bqhd", ops.cast(probs, self.compute_dtype), value)
        if self.conv_type != "none":
            conv = self.span_dynamic_conv(
                hidden_states,
                query,
                padding_mask=padding_mask if self.mask_padding_in_conv else None,
            )
            context = ops.concatenate([context, conv], axis=2)
        context = ops.reshape(context, (*ops.shape(context)[:-2], self.concat_dim))
        return self.output_dense(context)

    def compute_output_shape(self, hidden_states_shape, padding_mask_shape=None):
        return hidden_states_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "head_ratio": self.head_ratio,
                "conv_kernel_size": self.conv_kernel_size,
                "conv_type": self.conv_type,
                "dropout": self.dropout,
                "mask_padding_in_conv": self.mask_padding_in_conv,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
