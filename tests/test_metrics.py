"""Metrics against hand-computed cases and the widely used implementations."""

import numpy as np
import pytest

from convbert_keras.metrics import entity_f1
from convbert_keras.metrics import entity_spans


def test_entity_spans_follow_conlleval_chunking():
    tags = ["B-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-LOC", "I-ORG", "B-PER"]
    assert entity_spans(tags) == [
        ("PER", 0, 2),
        ("LOC", 3, 5),
        ("LOC", 5, 6),
        ("ORG", 6, 7),
        ("PER", 7, 8),
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
    from seqeval.metrics import f1_score
    from seqeval.metrics import precision_score
    from seqeval.metrics import recall_score

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


def test_classification_metrics_match_scikit_learn_and_scipy():
    from scipy import stats
    from sklearn import metrics as sk

    from convbert_keras.metrics import accuracy
    from convbert_keras.metrics import f1
    from convbert_keras.metrics import matthews_correlation
    from convbert_keras.metrics import pearson
    from convbert_keras.metrics import spearman

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 500)
    predictions = np.where(rng.random(500) < 0.7, labels, 1 - labels)
    assert accuracy(labels, predictions) == pytest.approx(sk.accuracy_score(labels, predictions))
    assert f1(labels, predictions) == pytest.approx(sk.f1_score(labels, predictions))
    assert matthews_correlation(labels, predictions) == pytest.approx(
        sk.matthews_corrcoef(labels, predictions)
    )
    three = rng.integers(0, 3, 500)
    guesses = np.where(rng.random(500) < 0.5, three, rng.integers(0, 3, 500))
    assert matthews_correlation(three, guesses) == pytest.approx(
        sk.matthews_corrcoef(three, guesses)
    )
    scores = rng.random(300) * 5
    noisy = np.round(scores + rng.normal(0, 1, 300), 1)  # rounding makes ties
    assert pearson(scores, noisy) == pytest.approx(stats.pearsonr(scores, noisy)[0])
    assert spearman(scores, noisy) == pytest.approx(stats.spearmanr(scores, noisy)[0])


def test_classification_metrics_hand_computed_edges():
    from convbert_keras.metrics import accuracy
    from convbert_keras.metrics import f1
    from convbert_keras.metrics import matthews_correlation

    assert matthews_correlation([1, 1, 0, 0], [1, 0, 0, 0]) == pytest.approx(1 / np.sqrt(3))
    assert matthews_correlation([1, 0, 1], [1, 1, 1]) == 0.0  # constant prediction
    assert f1([0, 0], [0, 0]) == 0.0
    assert f1([1, 1, 0, 0], [1, 0, 1, 0]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="3 labels but 2 predictions"):
        accuracy([1, 0, 1], [1, 0])
    with pytest.raises(ValueError, match="No examples"):
        accuracy([], [])


def test_squad_scores_follow_the_official_script():
    from convbert_keras.metrics import normalize_answer
    from convbert_keras.metrics import squad_scores

    assert normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert normalize_answer("an apple, a pear and the plum") == "apple pear and plum"
    scores = squad_scores(
        ["Eiffel Tower", "in 1889", "Paris France"],
        [["the Eiffel Tower", "Tower"], ["1889"], ["Paris"]],
    )
    # Exact: 1, 0, 0. F1: 1; "in 1889" vs "1889": P 1/2, R 1 -> 2/3;
    # "paris france" vs "paris": 2/3.
    assert scores["exact"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(100 * (1 + 2 / 3 + 2 / 3) / 3)
    assert "HasAns_exact" not in scores


def test_squad2_no_answer_scoring():
    from convbert_keras.metrics import squad_scores

    scores = squad_scores(["", "Paris", "", "1889"], [[], [""], ["Paris"], ["1889", "in 1889"]])
    # Unanswerable: "" right, "Paris" wrong. Answerable: "" wrong, "1889" right.
    assert scores["exact"] == scores["f1"] == 50.0
    assert scores["HasAns_exact"] == 50.0 and scores["NoAns_exact"] == 50.0
    with pytest.raises(ValueError, match="2 predictions for 1 questions"):
        squad_scores(["a", "b"], [["a"]])
