"""ConvBERT models: the backbone and the published configurations."""

from convbert_keras.models.backbone import ConvBertBackbone
from convbert_keras.models.presets import CONVBERT_CONFIGS
from convbert_keras.models.presets import convbert_config
from convbert_keras.models.tokenizer import ConvBertTokenizer

__all__ = [
    "CONVBERT_CONFIGS",
    "ConvBertBackbone",
    "ConvBertTokenizer",
    "convbert_config",
]
