"""Layers shared by the task heads."""

import keras
from keras_hub.layers import MaskedLMHead

from convbert_keras.layers.activations import gelu_exact
from convbert_keras.layers.dropout import HashDropout
from convbert_keras.layers.initializers import convbert_kernel_initializer


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


def tied_masked_lm_head(backbone, name):
    """The generator head of the paper: `Dense(embedding_dim)`, exact GELU,
    LayerNorm, then logits against the backbone's word embeddings (tied)
    plus a bias, at the masked positions. Logits are float32: under mixed
    precision the tied embedding's reversed output is float32 too."""
    return MaskedLMHead(
        vocabulary_size=backbone.vocabulary_size,
        token_embedding=backbone.token_embedding,
        intermediate_activation=gelu_exact,
        layer_norm_epsilon=backbone.layer_norm_epsilon,
        kernel_initializer=convbert_kernel_initializer(),
        dtype=logits_dtype(backbone.dtype_policy),
        name=name,
    )
