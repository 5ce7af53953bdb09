import keras

from convbert_keras.layers.activations import gelu_exact
from convbert_keras.layers.dropout import HashDropout
from convbert_keras.layers.grouped_dense import GroupedDense
from convbert_keras.layers.initializers import clone_initializer
from convbert_keras.layers.mixed_attention import MixedAttention


@keras.saving.register_keras_serializable(package="convbert_keras")
class ConvBertEncoderLayer(keras.layers.Layer):
    """One ConvBERT block: mixed attention, then a (grouped) feed-forward.

    `x = LayerNorm(x + Dropout(MixedAttention(x)))`, then
    `x = LayerNorm(x + Dropout(FFN(x)))` with
    `FFN = Dense_{H -> I} -> GELU (exact, erf) -> Dense_{I -> H}`; when
    `num_groups > 1` both dense layers are `GroupedDense`.

    Args:
        num_heads: int. See `MixedAttention`.
        head_ratio: int. See `MixedAttention`.
        conv_kernel_size: int. See `MixedAttention`.
        conv_type: str. See `MixedAttention`.
        mask_padding_in_conv: bool. See `MixedAttention`.
        intermediate_dim: int. Width of the feed-forward layer.
        num_groups: int. Groups of the feed-forward layers (1 = dense).
        dropout: float. Dropout on attention probabilities and on the outputs
            of both sub-blocks.
        layer_norm_epsilon: float. 1e-12 in the references.
        kernel_initializer: initializer of every kernel.
        remat: bool. Rematerialise the layer in training: keep only its
            input for the backward pass and compute the layer again there
            (`tf.recompute_grad`), with the dropout masks of the forward pass
            (their seeds are drawn once and passed in). Memory for
            activations falls to about one layer's worth, for one more
            forward pass per step. TensorFlow backend only.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments: `hidden_states` `(B, L, H)`, `padding_mask` `(B, L)`
    (optional), `training`. Returns `(B, L, H)`.

    Example:
    ```python
    layer = ConvBertEncoderLayer(num_heads=4, intermediate_dim=1024)
    y = layer(np.random.rand(2, 16, 256).astype("float32"))  # (2, 16, 256)
    ```
    """

    def __init__(
        self,
        num_heads,
        intermediate_dim,
        head_ratio=2,
        conv_kernel_size=9,
        conv_type="span",
        num_groups=1,
        dropout=0.0,
        layer_norm_epsilon=1e-12,
        mask_padding_in_conv=False,
        kernel_initializer="glorot_uniform",
        remat=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if remat and keras.config.backend() != "tensorflow":
            raise ValueError(
                "`remat=True` is implemented for the TensorFlow backend (it passes the "
                "dropout seeds into `tf.recompute_grad`); the Keras backend is "
                f"{keras.config.backend()!r}. Set KERAS_BACKEND=tensorflow or use remat=False."
            )
        if num_groups < 1 or intermediate_dim % num_groups:
            raise ValueError(
                f"`intermediate_dim` ({intermediate_dim}) must be divisible by "
                f"`num_groups` ({num_groups})."
            )
        self.num_heads = num_heads
        self.intermediate_dim = intermediate_dim
        self.head_ratio = head_ratio
        self.conv_kernel_size = conv_kernel_size
        self.conv_type = conv_type
        self.num_groups = num_groups
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.mask_padding_in_conv = mask_padding_in_conv
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.remat = remat
        self.attention = MixedAttention(
            num_heads=num_heads,
            head_ratio=head_ratio,
            conv_kernel_size=conv_kernel_size,
            conv_type=conv_type,
            dropout=dropout,
            mask_padding_in_conv=mask_padding_in_conv,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            dtype=self.dtype_policy,
            name="attention",
        )

    def _feedforward_dense(self, units, name):
        if self.num_groups > 1:
            return GroupedDense(
                units,
                num_groups=self.num_groups,
                kernel_initializer=clone_initializer(self.kernel_initializer),
                dtype=self.dtype_policy,
                name=name,
            )
        return keras.layers.Dense(
            units,
            kernel_initializer=clone_initializer(self.kernel_initializer),
            dtype=self.dtype_policy,
            name=name,
        )

    def _layer_norm(self, name, hidden_dim):
        layer = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name
        )
        layer.build((None, None, hidden_dim))
        return layer

    def _dropout(self, name):
        return HashDropout(self.dropout, dtype=self.dtype_policy, name=name)

    def build(self, hidden_states_shape, padding_mask_shape=None):
        hidden_dim = hidden_states_shape[-1]
        if hidden_dim % self.num_groups:
            raise ValueError(
                f"`hidden_dim` ({hidden_dim}) must be divisible by `num_groups` "
                f"({self.num_groups})."
            )
        self.attention.build(hidden_states_shape)
        self.attention_dropout = self._dropout("attention_dropout")
        self.attention_layer_norm = self._layer_norm("attention_layer_norm", hidden_dim)
        self.feedforward_intermediate_dense = self._feedforward_dense(
            self.intermediate_dim, "feedforward_intermediate_dense"
        )
        self.feedforward_intermediate_dense.build(hidden_states_shape)
        self.feedforward_output_dense = self._feedforward_dense(
            hidden_dim, "feedforward_output_dense"
        )
        self.feedforward_output_dense.build((*hidden_states_shape[:-1], self.intermediate_dim))
        self.feedforward_dropout = self._dropout("feedforward_dropout")
        self.feedforward_layer_norm = self._layer_norm("feedforward_layer_norm", hidden_dim)
        self.built = True

    def call(self, hidden_states, padding_mask=None, training=None):
        if not (self.remat and training):
            return self._block(hidden_states, padding_mask, training)
        import tensorflow as tf

        # Drawn here, outside the recomputed function: drawing advances the
        # seed generators, so a draw inside would give the recomputation
        # other masks than the forward pass, and wrong gradients.
        seeds = [
            self.attention.probs_dropout.next_seed(),
            self.attention_dropout.next_seed(),
            self.feedforward_dropout.next_seed(),
        ]
        return tf.recompute_grad(lambda x: self._block(x, padding_mask, True, seeds))(hidden_states)

    def _block(self, hidden_states, padding_mask, training, seeds=(None, None, None)):
        probs_seed, attention_seed, feedforward_seed = seeds
        attended = self.attention(
            hidden_states, padding_mask=padding_mask, training=training, dropout_seed=probs_seed
        )
        attended = self.attention_dropout(attended, training=training, seed=attention_seed)
        x = self.attention_layer_norm(hidden_states + attended)
        h = self.feedforward_intermediate_dense(x)
        # Exact (erf) GELU, as the references; keras.ops.gelu defaults to tanh.
        h = gelu_exact(h)
        h = self.feedforward_output_dense(h)
        h = self.feedforward_dropout(h, training=training, seed=feedforward_seed)
        return self.feedforward_layer_norm(x + h)

    def compute_output_shape(self, hidden_states_shape, padding_mask_shape=None):
        return hidden_states_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "intermediate_dim": self.intermediate_dim,
                "head_ratio": self.head_ratio,
                "conv_kernel_size": self.conv_kernel_size,
                "conv_type": self.conv_type,
                "num_groups": self.num_groups,
                "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "mask_padding_in_conv": self.mask_padding_in_conv,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "remat": self.remat,
            }
        )
        return config
