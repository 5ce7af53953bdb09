"""SQuAD exact match and F1 with the official answer normalisation."""

import collections
import re
import string

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text):
    """The official script's normalisation: lowercase, drop punctuation and
    the articles a/an/the, collapse white space."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction, gold):
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction, gold):
    """Bag-of-tokens F1 of normalised answers; two empty answers score 1."""
    predicted, expected = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not predicted or not expected:
        return float(predicted == expected)
    common = collections.Counter(predicted) & collections.Counter(expected)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(predicted), overlap / len(expected)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predictions, gold_answers):
    """Exact match and F1 in percent, each the best over an example's gold
    answers, averaged over examples.

    `predictions` are answer strings ("" for no answer); `gold_answers` are
    lists of strings per example, empty (or `[""]`) for an unanswerable
    SQuAD 2.0 question, which only "" answers correctly. With unanswerable
    questions present, also the scores on the answerable (`HasAns_`) and
    unanswerable (`NoAns_`) subsets.
    """
    if len(predictions) != len(gold_answers):
        raise ValueError(f"{len(predictions)} predictions for {len(gold_answers)} questions.")
    if not predictions:
        raise ValueError("No questions to score.")
    exact, f1, answerable = [], [], []
    for prediction, golds in zip(predictions, gold_answers):
        golds = [g for g in golds if normalize_answer(g)] or [""]
        answerable.append(golds != [""])
        exact.append(max(exact_match(prediction, g) for g in golds))
        f1.append(max(token_f1(prediction, g) for g in golds))
    scores = {"exact": 100 * sum(exact) / len(exact), "f1": 100 * sum(f1) / len(f1)}
    if not all(answerable):
        for prefix, keep in (("HasAns", True), ("NoAns", False)):
            chosen = [i for i, a in enumerate(answerable) if a == keep]
            if chosen:
                scores[f"{prefix}_exact"] = 100 * sum(exact[i] for i in chosen) / len(chosen)
                scores[f"{prefix}_f1"] = 100 * sum(f1[i] for i in chosen) / len(chosen)
    return scores
