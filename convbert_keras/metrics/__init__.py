"""Evaluation metrics with the official definitions."""

from convbert_keras.metrics.entities import entity_f1
from convbert_keras.metrics.entities import entity_spans

__all__ = ["entity_f1", "entity_spans"]
