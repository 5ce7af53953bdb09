"""GLUE's metrics: accuracy, F1, Matthews correlation, Pearson, Spearman."""

import numpy as np


def _pair(labels, predictions):
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    if labels.shape != predictions.shape:
        raise ValueError(
            f"{labels.shape[0] if labels.ndim else 0} labels but "
            f"{predictions.shape[0] if predictions.ndim else 0} predictions."
        )
    if labels.size == 0:
        raise ValueError("No examples to score.")
    return labels, predictions


def accuracy(labels, predictions):
    """The share of `predictions` equal to `labels` (GLUE's accuracy)."""
    labels, predictions = _pair(labels, predictions)
    return float(np.mean(labels == predictions))


def f1(labels, predictions, positive=1):
    """Binary F1 of the `positive` class (MRPC, QQP); 0 when undefined."""
    labels, predictions = _pair(labels, predictions)
    true_positive = np.sum((predictions == positive) & (labels == positive))
    predicted = np.sum(predictions == positive)
    actual = np.sum(labels == positive)
    if true_positive == 0:
        return 0.0
    precision, recall = true_positive / predicted, true_positive / actual
    return float(2 * precision * recall / (precision + recall))


def matthews_correlation(labels, predictions):
    """Matthews correlation coefficient over any number of classes (CoLA);
    0 when a row or column of the confusion matrix is constant."""
    labels, predictions = _pair(labels, predictions)
    classes = np.union1d(labels, predictions)
    index = {c: i for i, c in enumerate(classes)}
    confusion = np.zeros((len(classes), len(classes)))
    for label, prediction in zip(labels, predictions):
        confusion[index[label], index[prediction]] += 1
    samples = confusion.sum()
    correct = np.trace(confusion)
    true_counts, predicted_counts = confusion.sum(axis=1), confusion.sum(axis=0)
    covariance = correct * samples - true_counts @ predicted_counts
    denominator = np.sqrt(
        (samples**2 - predicted_counts @ predicted_counts)
        * (samples**2 - true_counts @ true_counts)
    )
    return float(covariance / denominator) if denominator else 0.0


def pearson(labels, predictions):
    """Pearson's correlation of two sequences of numbers (STS-B); 0 when
    either is constant."""
    labels, predictions = (a.astype("float64") for a in _pair(labels, predictions))
    labels, predictions = labels - labels.mean(), predictions - predictions.mean()
    denominator = np.sqrt((labels**2).sum() * (predictions**2).sum())
    return float((labels * predictions).sum() / denominator) if denominator else 0.0


def _ranks(values):
    """Ranks from 1, ties sharing their average rank."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    sorted_values = values[order]
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman(labels, predictions):
    """Spearman's rank correlation (STS-B): Pearson's on the ranks, ties
    given their mean rank."""
    labels, predictions = _pair(labels, predictions)
    return pearson(_ranks(labels.astype("float64")), _ranks(predictions.astype("float64")))
