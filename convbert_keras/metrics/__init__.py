"""Evaluation metrics with the official definitions."""

from convbert_keras.metrics.classification import accuracy
from convbert_keras.metrics.classification import f1
from convbert_keras.metrics.classification import matthews_correlation
from convbert_keras.metrics.classification import pearson
from convbert_keras.metrics.classification import spearman
from convbert_keras.metrics.entities import entity_f1
from convbert_keras.metrics.entities import entity_spans
from convbert_keras.metrics.squad import normalize_answer
from convbert_keras.metrics.squad import squad_scores

__all__ = [
    "accuracy",
    "entity_f1",
    "entity_spans",
    "f1",
    "matthews_correlation",
    "normalize_answer",
    "pearson",
    "spearman",
    "squad_scores",
]
