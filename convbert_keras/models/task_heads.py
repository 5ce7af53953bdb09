"""Layers shared by the task heads."""

import keras
from keras_hub.layers import MaskedLMHead
from keras_hub.layers import ReversibleEmbedding

from convbert_keras.layers.activations import gelu_exact
from convbert_keras.layers.dropout import HashDropout
from convbert_keras.layers.initializers import convbert_kernel_initializer

POOLINGS = ("cls", "mean")


@keras.saving.register_keras_serializable(package="convbert_keras")
class MaskedMeanPooling(keras.layers.Layer):
    """The mean of a sequence over its real (unpadded) positions.

    Inputs: `sequence` `(batch, length, width)` and `padding_mask`
    `(batch, length)` (1 for tokens, 0 for padding).
    Output: `(batch, width)`. A row without tokens gives zeros.

    Example:
    ```python
    pooled = MaskedMeanPooling()(np.ones((2, 4, 8)), np.array([[1, 1, 0, 0]] * 2))
    ```
    """

    def call(self, sequence, padding_mask):
        mask = keras.ops.cast(padding_mask, sequence.dtype)[..., None]
        total = keras.ops.sum(sequence * mask, axis=1)
        return total / keras.ops.maximum(keras.ops.sum(mask, axis=1), 1)


def pool_sequence(backbone, inputs, pooling):
    """The backbone's summary of each sequence: the `[CLS]` state
    (`"cls"`, the reference head) or the mean over real tokens (`"mean"`).

    Pretraining trains every position, but replaced-token detection never
    asks anything of `[CLS]` beyond "not replaced": after a short
    pretraining its state barely depends on the text, while the mean of
    the token states carries what pretraining learned from the first
    fine-tuning step on."""
    if pooling not in POOLINGS:
        raise ValueError(f"`pooling` must be one of {POOLINGS}. Received: {pooling!r}")
    outputs = backbone(inputs)
    if pooling == "cls":
        return outputs["pooled_output"]
    return MaskedMeanPooling(dtype=backbone.dtype_policy, name="mean_pooling")(
        outputs["sequence_output"], inputs["padding_mask"]
    )


def logits_dtype(policy):
    """Logits stay float32 under mixed precision, for a stable loss."""
    return "float32" if policy.compute_dtype != "float32" else policy


def logits_dense(units, policy, name="logits", activation=None):
    return keras.layers.Dense(
        units,
        activation=activation,
        kernel_initializer=convbert_kernel_initializer(),
        dtype=logits_dtype(policy),
        name=name,
    )


def pooled_head_layers(backbone, units, dropout, output_name="logits", activation=None):
    """The reference sequence head: dropout, `Dense(hidden)` + exact GELU,
    dropout, `Dense(units)`. Returns the four layers in that order."""
    policy = backbone.dtype_policy
    return (
        HashDropout(dropout, dtype=policy, name="pooled_dropout"),
        keras.layers.Dense(
            backbone.hidden_dim,
            activation=gelu_exact,
            kernel_initializer=convbert_kernel_initializer(),
            dtype=policy,
            name="pooled_dense",
        ),
        HashDropout(dropout, dtype=policy, name="output_dropout"),
        logits_dense(units, policy, name=output_name, activation=activation),
    )


def masked_lm_head(backbone, name, tie_word_embeddings=True):
    """The generator head of the paper: `Dense(embedding_dim)`, exact GELU,
    LayerNorm, then logits against the word embeddings plus a bias, at the
    masked positions. The decoder is the backbone's word embedding table
    (tied), or with `tie_word_embeddings=False` a table of the same shape
    of its own (transformers' untied `generator_lm_head`). Logits are
    float32: under mixed precision the decoder's reversed output is float32
    too."""
    decoder = backbone.token_embedding
    if not tie_word_embeddings:
        # Made like the word embeddings, so the head computes the same way
        # whether tied or not.
        decoder = ReversibleEmbedding(
            input_dim=backbone.vocabulary_size,
            output_dim=backbone.embedding_dim,
            embeddings_initializer=convbert_kernel_initializer(),
            dtype=backbone.dtype_policy,
            name=f"{name}_decoder",
        )
        # The head's symbolic call does not run it (the head knows its
        # output shape): built here, before weights are loaded into it.
        decoder.build()
    return MaskedLMHead(
        vocabulary_size=backbone.vocabulary_size,
        token_embedding=decoder,
        intermediate_activation=gelu_exact,
        layer_norm_epsilon=backbone.layer_norm_epsilon,
        kernel_initializer=convbert_kernel_initializer(),
        dtype=logits_dtype(backbone.dtype_policy),
        name=name,
    )
