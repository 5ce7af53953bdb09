"""ConvBERT models: the backbone and the published configurations."""

from convbert_keras.models.backbone import ConvBertBackbone
from convbert_keras.models.presets import CONVBERT_CONFIGS
from convbert_keras.models.presets import convbert_config

__all__ = ["CONVBERT_CONFIGS", "ConvBertBackbone", "convbert_config"]
