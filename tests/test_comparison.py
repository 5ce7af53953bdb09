"""Honest evaluation: mean pooling, the bag-of-words baseline, the comparison runner."""

import numpy as np
import pytest
from support import TINY
from support import VOCAB

from convbert_keras import ConvBertBackbone
from convbert_keras import ConvBertTextClassifier
from convbert_keras import ConvBertTokenizer
from convbert_keras.data.finetune_data import FinetuneData
from convbert_keras.lab.baselines import bag_of_words_baseline
from convbert_keras.lab.comparison import comparison_tokenizer
from convbert_keras.lab.comparison import participation_ratio
from convbert_keras.lab.comparison import run_arm
from convbert_keras.lab.comparison import summary_table
from convbert_keras.lab.comparison import token_state_spread
from convbert_keras.models.task_heads import MaskedMeanPooling
from convbert_keras.models.text_classifier_preprocessor import ConvBertTextClassifierPreprocessor


def sentiment_data(count=48, seed=0):
    """Texts whose label is which of two words they hold, among noise."""
    rng = np.random.default_rng(seed)
    noise = ["the", "movie", "plot", "was", "a", "film", "and", "story"]
    texts, labels = [], []
    for i in range(count):
        label = i % 2
        words = list(rng.choice(noise, 4)) + ["good" if label else "bad"]
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(label)
    return texts, np.array(labels, "int32")


def data_with_test():
    train, validation, test = (
        sentiment_data(count, s) for count, s in ((160, 0), (48, 1), (48, 2))
    )
    return FinetuneData(
        "classification",
        train,
        {"validation": validation},
        2,
        ("accuracy", "f1"),
        ["neg", "pos"],
        test={"test": test},
    )


def test_masked_mean_pooling_by_hand():
    sequence = np.arange(24, dtype="float32").reshape(2, 3, 4)
    mask = np.array([[1, 1, 0], [0, 0, 0]])
    pooled = np.asarray(MaskedMeanPooling()(sequence, mask))
    np.testing.assert_allclose(pooled[0], (sequence[0, 0] + sequence[0, 1]) / 2)
    np.testing.assert_allclose(pooled[1], 0)


def test_mean_pooling_classifier_reads_the_mean_of_the_token_states():
    backbone = ConvBertBackbone(**TINY)
    classifier = ConvBertTextClassifier(backbone, num_classes=2, pooling="mean")
    x = {
        "token_ids": np.array([[2, 7, 9, 3, 0, 0]], "int32"),
        "segment_ids": np.zeros((1, 6), "int32"),
        "padding_mask": np.array([[1, 1, 1, 1, 0, 0]], "int32"),
    }
    states = np.asarray(backbone(x)["sequence_output"])[0, :4].mean(0, keepdims=True)
    head = classifier.output_dense(classifier.pooled_dense(states))
    np.testing.assert_allclose(classifier.predict(x, verbose=0), head, atol=1e-5)
    clone = ConvBertTextClassifier.from_config(classifier.get_config())
    assert clone.pooling == "mean"
    with pytest.raises(ValueError, match="`pooling` must be one of"):
        ConvBertTextClassifier(backbone, num_classes=2, pooling="max")


@pytest.mark.slow
def test_bag_of_words_learns_a_word_and_reports_the_test_once():
    data = data_with_test()
    result = bag_of_words_baseline(data)
    # One word decides the label; a broken baseline would sit near 0.5.
    assert result["test"]["accuracy"] >= 0.95 and result["validation"]["accuracy"] >= 0.95
    assert 1 <= result["epoch"] <= 100 and result["l2"] in (1e-5, 1e-4, 1e-3, 1e-2)
    with pytest.raises(ValueError, match="needs a classification task"):
        bag_of_words_baseline(data._replace(num_classes=1))
    import tensorflow as tf

    with pytest.raises(ValueError, match="needs in-memory training data"):
        bag_of_words_baseline(data._replace(train=tf.data.Dataset.from_tensor_slices(data.train)))


def test_summary_table_by_hand():
    table = summary_table({"scratch": [0.6, 0.7, 0.8], "bag_of_words": [0.5]})
    assert "| scratch | 0.700 ± 0.100 | 0.600, 0.700, 0.800 |" in table
    assert "| bag_of_words | 0.500 | 0.500 |" in table


def test_participation_ratio_by_hand():
    # Four points at the ends of two equal axes: two directions, evenly.
    assert participation_ratio([[1, 0], [-1, 0], [0, 1], [0, -1]]) == pytest.approx(2.0)
    # Variances 4 and 1 on the axes: (4 + 1)^2 / (16 + 1).
    assert participation_ratio([[2, 0], [-2, 0], [0, 1], [0, -1]]) == pytest.approx(25 / 17)
    # On one line through the plane, however long.
    assert participation_ratio([[1, 2], [2, 4], [-3, -6]]) == pytest.approx(1.0)


def test_token_state_spread_sees_a_collapsed_top_layer():
    backbone = ConvBertBackbone(**TINY)
    preprocessor = ConvBertTextClassifierPreprocessor(
        ConvBertTokenizer(vocabulary=VOCAB), sequence_length=12
    )
    texts = sentiment_data(32)[0]
    spread = token_state_spread(backbone, preprocessor, texts)
    assert len(spread) == TINY["num_layers"]
    assert all(2 < s <= TINY["hidden_dim"] for s in spread)
    # The top layer's final LayerNorm keeps one coordinate: its states lie
    # on one line, while the layer below is untouched.
    norm = backbone.transformer_layers[-1].feedforward_layer_norm
    norm.gamma.assign(np.eye(TINY["hidden_dim"], dtype="float32")[0])
    collapsed = token_state_spread(backbone, preprocessor, texts)
    assert collapsed[-1] == pytest.approx(1.0)
    assert collapsed[:-1] == pytest.approx(spread[:-1])


def test_an_unknown_arm_is_refused_before_any_work(tmp_path):
    # The arms' runs, their reuse and their refusal of other settings are
    # checked on the main job's runs (tests/test_demo.py).
    with pytest.raises(ValueError, match="Unknown arm 'gpt'"):
        run_arm("gpt", data_with_test(), [], ConvBertTokenizer(vocabulary=VOCAB), str(tmp_path))
    assert not any(tmp_path.iterdir())


def test_the_comparison_vocabulary_is_learnt_once_and_reused(tmp_path):
    texts = sentiment_data(64)[0]
    tokenizer = comparison_tokenizer(str(tmp_path), texts, vocabulary_size=60)
    pieces = tokenizer.get_vocabulary()
    assert pieces[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert {"good", "bad", "movie"} <= set(pieces) and len(pieces) <= 60
    assert (tmp_path / "vocab.txt").read_text(encoding="utf-8").split() == pieces
    assert tokenizer.token_to_id("[UNK]") not in np.concatenate(
        [np.asarray(tokenizer(t)) for t in texts]
    )
    # Reused as it is, whatever the corpus and size of a later call.
    again = comparison_tokenizer(str(tmp_path), ["other words entirely"], vocabulary_size=9000)
    assert again.get_vocabulary() == pieces
    assert not any(name.endswith(".partial") for name in map(str, tmp_path.iterdir()))
