"""Checkpoint converters: Hugging Face directories and original TF1 files."""

from convbert_keras.convert.checkpoint import SOURCES
from convbert_keras.convert.checkpoint import convert_checkpoint
from convbert_keras.convert.hf import backbone_kwargs_from_hf_config
from convbert_keras.convert.hf import read_hf_checkpoint
from convbert_keras.convert.reference_checkpoint import ReferenceCheckpoint
from convbert_keras.convert.tf1 import read_tf1_checkpoint
from convbert_keras.convert.weights import load_weights_into_backbone

__all__ = [
    "SOURCES",
    "ReferenceCheckpoint",
    "backbone_kwargs_from_hf_config",
    "convert_checkpoint",
    "load_weights_into_backbone",
    "read_hf_checkpoint",
    "read_tf1_checkpoint",
]
