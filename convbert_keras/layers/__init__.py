"""ConvBERT's Keras layers."""

from convbert_keras.layers.dropout import HashDropout
from convbert_keras.layers.encoder_layer import ConvBertEncoderLayer
from convbert_keras.layers.grouped_dense import GroupedDense
from convbert_keras.layers.mixed_attention import MixedAttention
from convbert_keras.layers.span_dynamic_conv import SpanDynamicConv

__all__ = [
    "ConvBertEncoderLayer",
    "GroupedDense",
    "HashDropout",
    "MixedAttention",
    "SpanDynamicConv",
]
