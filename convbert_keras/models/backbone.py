import keras
from keras_hub.layers import PositionEmbedding
from keras_hub.layers import ReversibleEmbedding
from keras_hub.models import Backbone

from convbert_keras.layers.dropout import HashDropout
from convbert_keras.layers.encoder_layer import ConvBertEncoderLayer
from convbert_keras.layers.initializers import convbert_kernel_initializer
from convbert_keras.layers.mixed_attention import attention_layout
from convbert_keras.models.transformers_presets import TransformersPresets


@keras.saving.register_keras_serializable(package="convbert_keras")
class ConvBertBackbone(TransformersPresets, Backbone):
    """The ConvBERT encoder (Jiang et al., 2020), without task heads.

    Word, position and segment embeddings of width `embedding_dim`, summed,
    layer-normalised and projected to `hidden_dim` when the two differ (the
    paper's embedding bottleneck); then `num_layers` `ConvBertEncoderLayer`
    blocks of mixed attention (reduced-head self-attention beside a
    span-based dynamic convolution) and a (grouped) feed-forward network.
    `pooled_output` is the final state of the first (`[CLS]`) token; ConvBERT
    has no pooler layer.

    Args:
        vocabulary_size: int. Size of the token vocabulary.
        num_layers: int. Number of encoder blocks.
        num_heads: int. Attention heads of the full model; mixed attention
            keeps `num_heads // head_ratio` of them and adds as many conv
            heads.
        hidden_dim: int. Width of the encoder.
        intermediate_dim: int. Width of the feed-forward layers.
        embedding_dim: int. Width of the embeddings; `None` means
            `hidden_dim`.
        head_ratio: int. The paper's gamma, 2 in all published models.
        conv_kernel_size: int. Odd width of the dynamic convolution.
        conv_type: `"span"` (ConvBERT, default), `"dynamic"` (kernel from the
            token alone) or `"none"` (BERT self-attention, all heads).
        num_groups: int. Groups of the feed-forward layers (1 = dense).
        dropout: float. Dropout everywhere (embeddings, attention, outputs).
        max_sequence_length: int. Number of position embeddings.
        num_segments: int. Number of segment (token type) ids.
        layer_norm_epsilon: float. 1e-12 in the references.
        mask_padding_in_conv: bool. `False` (default) reproduces the reference
            code, where padded positions feed the convolution of the real
            tokens next to them, so outputs depend on the amount of padding.
            `True` zeroes padded positions in the conv branch, which makes
            outputs independent of padding (e.g. for dynamic batching).
        remat: bool. Rematerialise every encoder layer in training: the
            backward pass computes each layer again from its input, with the
            forward pass's dropout masks, instead of keeping its activations.
            Same gradients, less memory (longer sequences, larger batches)
            for one more forward pass per step (15-34% more time at 128-512
            tokens; faster at 8192, README "Memory"). TensorFlow backend
            only. See `ConvBertEncoderLayer`.
        shared_embeddings: another `ConvBertBackbone` whose embedding tables
            and embedding LayerNorm this one uses (the same variables), as
            ELECTRA's generator does with its discriminator. Not part of the
            config: `ConvBertPretrainer` rebuilds the sharing.
        dtype: dtype or `keras.DTypePolicy` for computations and weights.

    Inputs: a dict of int32 `(B, L)` tensors `token_ids`, `segment_ids`,
    `padding_mask` (1 for tokens, 0 for padding).
    Outputs: a dict with `sequence_output` `(B, L, hidden_dim)` and
    `pooled_output` `(B, hidden_dim)`.

    Example:
    ```python
    from convbert_keras import ConvBertBackbone, convbert_config

    backbone = ConvBertBackbone(**convbert_config("small"))
    outputs = backbone({
        "token_ids": np.array([[101, 7592, 102, 0]], "int32"),
        "segment_ids": np.zeros((1, 4), "int32"),
        "padding_mask": np.array([[1, 1, 1, 0]], "int32"),
    })
    outputs["sequence_output"].shape  # (1, 4, 256)
    ```
    """

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        embedding_dim=None,
        head_ratio=2,
        conv_kernel_size=9,
        conv_type="span",
        num_groups=1,
        dropout=0.1,
        max_sequence_length=512,
        num_segments=2,
        layer_norm_epsilon=1e-12,
        mask_padding_in_conv=False,
        remat=False,
        shared_embeddings=None,
        dtype=None,
        **kwargs,
    ):
        if embedding_dim is None:
            embedding_dim = hidden_dim
        for name, value in (
            ("vocabulary_size", vocabulary_size),
            ("num_layers", num_layers),
            ("hidden_dim", hidden_dim),
            ("intermediate_dim", intermediate_dim),
            ("embedding_dim", embedding_dim),
            ("max_sequence_length", max_sequence_length),
            ("num_segments", num_segments),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer. Received: {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1). Received: {dropout}")
        # Fail here, with the argument names, rather than deep in a layer.
        attention_layout(hidden_dim, num_heads, head_ratio, conv_type)

        if shared_embeddings is not None:
            self._check_shareable(
                shared_embeddings, vocabulary_size, embedding_dim, max_sequence_length, num_segments
            )

        # === Layers ===
        if shared_embeddings is None:
            self.token_embedding = ReversibleEmbedding(
                input_dim=vocabulary_size,
                output_dim=embedding_dim,
                embeddings_initializer=convbert_kernel_initializer(),
                dtype=dtype,
                name="token_embedding",
            )
            self.position_embedding = PositionEmbedding(
                sequence_length=max_sequence_length,
                initializer=convbert_kernel_initializer(),
                dtype=dtype,
                name="position_embedding",
            )
            self.segment_embedding = keras.layers.Embedding(
                input_dim=num_segments,
                output_dim=embedding_dim,
                embeddings_initializer=convbert_kernel_initializer(),
                dtype=dtype,
                name="segment_embedding",
            )
            self.embeddings_layer_norm = keras.layers.LayerNormalization(
                epsilon=layer_norm_epsilon, dtype=dtype, name="embeddings_layer_norm"
            )
        else:
            # ELECTRA's generator: the same tables and LayerNorm as the
            # discriminator (same variables), its own projection and layers.
            self.token_embedding = shared_embeddings.token_embedding
            self.position_embedding = shared_embeddings.position_embedding
            self.segment_embedding = shared_embeddings.segment_embedding
            self.embeddings_layer_norm = shared_embeddings.embeddings_layer_norm
        self.embeddings_add = keras.layers.Add(dtype=dtype, name="embeddings_add")
        self.embeddings_dropout = HashDropout(dropout, dtype=dtype, name="embeddings_dropout")
        self.embeddings_projection = None
        if embedding_dim != hidden_dim:
            self.embeddings_projection = keras.layers.Dense(
                hidden_dim,
                kernel_initializer=convbert_kernel_initializer(),
                dtype=dtype,
                name="embeddings_projection",
            )
        self.transformer_layers = [
            ConvBertEncoderLayer(
                num_heads=num_heads,
                intermediate_dim=intermediate_dim,
                head_ratio=head_ratio,
                conv_kernel_size=conv_kernel_size,
                conv_type=conv_type,
                num_groups=num_groups,
                dropout=dropout,
                layer_norm_epsilon=layer_norm_epsilon,
                mask_padding_in_conv=mask_padding_in_conv,
                kernel_initializer=convbert_kernel_initializer(),
                remat=remat,
                dtype=dtype,
                name=f"transformer_layer_{i}",
            )
            for i in range(num_layers)
        ]

        # === Functional model ===
        token_id_input = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        segment_id_input = keras.Input(shape=(None,), dtype="int32", name="segment_ids")
        padding_mask_input = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
        tokens = self.token_embedding(token_id_input)
        positions = self.position_embedding(tokens)
        segments = self.segment_embedding(segment_id_input)
        x = self.embeddings_add((tokens, positions, segments))
        x = self.embeddings_layer_norm(x)
        x = self.embeddings_dropout(x)
        if self.embeddings_projection is not None:
            x = self.embeddings_projection(x)
        for layer in self.transformer_layers:
            x = layer(x, padding_mask=padding_mask_input)
        super().__init__(
            inputs={
                "token_ids": token_id_input,
                "segment_ids": segment_id_input,
                "padding_mask": padding_mask_input,
            },
            outputs={"sequence_output": x, "pooled_output": x[:, 0, :]},
            dtype=dtype,
            **kwargs,
        )

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.embedding_dim = embedding_dim
        self.head_ratio = head_ratio
        self.conv_kernel_size = conv_kernel_size
        self.conv_type = conv_type
        self.num_groups = num_groups
        self.dropout = dropout
        self.max_sequence_length = max_sequence_length
        self.num_segments = num_segments
        self.layer_norm_epsilon = layer_norm_epsilon
        self.mask_padding_in_conv = mask_padding_in_conv
        self.remat = remat

    @staticmethod
    def _check_shareable(other, vocabulary_size, embedding_dim, max_sequence_length, num_segments):
        mine = (vocabulary_size, embedding_dim, max_sequence_length, num_segments)
        theirs = (
            other.vocabulary_size,
            other.embedding_dim,
            other.max_sequence_length,
            other.num_segments,
        )
        if mine != theirs:
            raise ValueError(
                "`shared_embeddings` must have the same vocabulary_size, "
                "embedding_dim, max_sequence_length and num_segments; got "
                f"{theirs} there and {mine} here."
            )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "hidden_dim": self.hidden_dim,
                "intermediate_dim": self.intermediate_dim,
                "embedding_dim": self.embedding_dim,
                "head_ratio": self.head_ratio,
                "conv_kernel_size": self.conv_kernel_size,
                "conv_type": self.conv_type,
                "num_groups": self.num_groups,
                "dropout": self.dropout,
                "max_sequence_length": self.max_sequence_length,
                "num_segments": self.num_segments,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "mask_padding_in_conv": self.mask_padding_in_conv,
                "remat": self.remat,
            }
        )
        return config

    def default_lora_layer_names(self):
        """The layers `enable_lora(rank)` adapts by default: each layer's
        attention query and value projections (LoRA's choice for
        transformers, as keras-hub's BERT makes it). The span-based
        convolution's dense layers (`kernel_dense`, `conv_value_dense`) can
        be named as well (`enable_lora(rank, target_layer_names=...)`)."""
        return ["query_dense", "value_dense"]

    def reinitialize_top_layers(self, count):
        """Gives the top `count` encoder layers fresh initial weights, in
        place (the embeddings and lower layers keep theirs).

        For fine-tuning a replaced-token-detection discriminator on few
        labels: its top layer answers one question per token (original or
        replaced), and its token states collapse onto a few directions
        (at the 2-layer size of the README's comparison the participation
        ratio of the top layer's states falls from about 32 at
        initialisation to 2.4 after 1,500 steps, 6 after 12,000, while
        masked-LM pretraining keeps 18). Fine-tuned from there, the model
        fits its labels and generalises worse than from scratch;
        re-initialising the top layer keeps what the lower layers learnt
        (Zhang et al., 2021, "Revisiting Few-sample BERT Fine-tuning", do
        the same for BERT). Draws from the global Keras seed
        (`keras.utils.set_random_seed`).

        Args:
            count: int. Layers to re-initialise, from the top; 0 to
                `num_layers`.
        """
        if not 0 <= count <= self.num_layers:
            raise ValueError(
                f"`count` must be between 0 and the model's {self.num_layers} layers. "
                f"Received: {count}"
            )
        width = self.hidden_dim
        for layer in self.transformer_layers[self.num_layers - count :]:
            fresh = ConvBertEncoderLayer.from_config(layer.get_config())
            fresh.build((None, None, width))
            for variable, value in zip(layer.weights, fresh.weights, strict=True):
                if variable.path.rsplit("/", 1)[-1] != value.path.rsplit("/", 1)[-1]:
                    raise RuntimeError(
                        f"Re-initialising {layer.name}: weight {variable.path} does not "
                        f"line up with a fresh layer's {value.path}."
                    )
                variable.assign(value)
