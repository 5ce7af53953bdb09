"""Metrics against hand-computed cases and the widely used implementations."""

import numpy as np
import pytest

from convbert_keras.metrics import entity_f1
from convbert_keras.metrics import entity_spans


def test_entity_spans_follow_conlleval_chunking():
    tags = ["B-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-LOC", "I-ORG", "B-PER"]
    assert entity_spans(tags) == [
        ("PER", 0, 2), ("LOC", 3, 5), ("LOC", 5, 6), ("ORG", 6, 7), ("PER", 7, 8),
    ]
    assert entity_spans([]) == [] and entity_spans(["O", "O"]) == []


def test_entity_f1_hand_computed():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG"]]
    predicted = [["B-PER", "O", "O", "B-LOC"], ["O", "B-ORG"]]
    # Gold: PER(0,2) LOC(3,4) ORG(1,2); predicted: PER(0,1) LOC ORG -> 2 of 3.
    scores = entity_f1(gold, predicted)
    assert scores["precision"] == pytest.approx(2 / 3)
    assert scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 / 3)
    assert entity_f1([["O"]], [["O"]])["f1"] == 0.0


def test_entity_f1_matches_seqeval_on_random_tags():
    from seqeval.metrics import f1_score, precision_score, recall_score

    rng = np.random.default_rng(0)
    tags = ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "I-ORG"]
    gold = [list(rng.choice(tags, size=rng.integers(1, 20))) for _ in range(300)]
    predicted = [
        [tag if rng.random() < 0.7 else str(rng.choice(tags)) for tag in sentence]
        for sentence in gold
    ]
    scores = entity_f1(gold, predicted)
    assert scores["f1"] == pytest.approx(f1_score(gold, predicted))
    assert scores["precision"] == pytest.approx(precision_score(gold, predicted))
    assert scores["recall"] == pytest.approx(recall_score(gold, predicted))


def test_entity_f1_bad_input_is_named():
    with pytest.raises(ValueError, match="not a BIO tag"):
        entity_f1([["PER"]], [["O"]])
    with pytest.raises(ValueError, match="Sentence 0 has 2 gold tags but 1 predicted"):
        entity_f1([["O", "O"]], [["O"]])
    with pytest.raises(ValueError, match="2 gold sentences but 1 predicted"):
        entity_f1([["O"], ["O"]], [["O"]])
