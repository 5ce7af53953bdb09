"""Tasks learn real data above chance (data fetched from PyPI wheels)."""

import re

import numpy as np
import pytest

from convbert_keras import ConvBertBackbone
from convbert_keras import ConvBertQuestionAnswerer
from convbert_keras import ConvBertQuestionAnswererPreprocessor
from convbert_keras import ConvBertTextClassifier
from convbert_keras import ConvBertTextClassifierPreprocessor
from convbert_keras import ConvBertTokenClassifier
from convbert_keras import ConvBertTokenClassifierPreprocessor
from convbert_keras import ConvBertTokenizer
from convbert_keras.data import fetch
from convbert_keras.data import load_rotten_tomatoes
from convbert_keras.data import load_wikipedia_sample
from convbert_keras.data import load_wnut16
from convbert_keras.metrics import entity_f1

pytestmark = pytest.mark.slow


def test_rotten_tomatoes_split_is_by_movie_and_balanced():
    (train_x, train_y), (val_x, val_y) = load_rotten_tomatoes()
    assert len(train_x) + len(val_x) == 12808
    assert 0.15 < len(val_x) / 12808 < 0.25
    assert 0.4 < np.mean(train_y) < 0.6


def small_model():
    """The BERT uncased tokenizer and a 2-layer, 64-wide ConvBERT."""
    tokenizer = ConvBertTokenizer(vocabulary=fetch("bert_uncased_vocab"))
    backbone = ConvBertBackbone(
        vocabulary_size=tokenizer.vocabulary_size(),
        num_layers=2,
        num_heads=4,
        hidden_dim=64,
        embedding_dim=32,
        intermediate_dim=128,
        max_sequence_length=64,
    )
    return tokenizer, backbone


@pytest.mark.optimized_xla
def test_sentiment_classifier_learns_rotten_tomatoes():
    import keras

    (train_x, train_y), (val_x, val_y) = load_rotten_tomatoes()
    tokenizer, backbone = small_model()
    classifier = ConvBertTextClassifier(
        backbone,
        num_classes=2,
        preprocessor=ConvBertTextClassifierPreprocessor(tokenizer, sequence_length=64),
    )
    classifier.compile(optimizer=keras.optimizers.AdamW(5e-4, weight_decay=0.01))
    classifier.fit(x=train_x, y=np.array(train_y), batch_size=32, epochs=3, verbose=0)
    accuracy = classifier.evaluate(
        x=val_x, y=np.array(val_y), batch_size=256, verbose=0, return_dict=True
    )["sparse_categorical_accuracy"]
    majority = max(np.mean(val_y), 1 - np.mean(val_y))
    print(f"Rotten Tomatoes validation accuracy {accuracy:.3f} (majority class {majority:.3f})")
    # Seeded; across seeds this 3-epoch run gives 0.62-0.75.
    assert accuracy > majority + 0.05


def shuffled_like(sentences, rng):
    """The same tags at random places: the chance level of a tagger."""
    flat = rng.permutation([tag for sentence in sentences for tag in sentence])
    out, start = [], 0
    for sentence in sentences:
        out.append([str(tag) for tag in flat[start : start + len(sentence)]])
        start += len(sentence)
    return out


@pytest.mark.optimized_xla
def test_token_classifier_learns_wnut_entities():
    import keras
    import tensorflow as tf

    train, validation, tags = load_wnut16()
    assert len(train) + len(validation) == 2394 and len(tags) == 21
    ids = {tag: i for i, tag in enumerate(tags)}
    tokenizer, backbone = small_model()
    tagger = ConvBertTokenClassifier(
        backbone,
        num_classes=len(tags),
        preprocessor=ConvBertTokenClassifierPreprocessor(tokenizer, sequence_length=64),
    )
    tagger.compile(optimizer=keras.optimizers.AdamW(1e-3, weight_decay=0.01))
    tagger.fit(
        x=tf.ragged.constant([words for words, _ in train]),
        y=tf.ragged.constant([[ids[t] for t in sentence_tags] for _, sentence_tags in train]),
        batch_size=32,
        epochs=8,
        verbose=0,
    )
    gold = [sentence_tags for _, sentence_tags in validation]
    predicted = tagger.predict_words([words for words, _ in validation])
    # Words cut by truncation get no tag: they count as "O".
    predicted = [[tags[i] for i in p] + ["O"] * (len(g) - len(p)) for p, g in zip(predicted, gold)]
    f1 = entity_f1(gold, predicted)["f1"]
    chance = entity_f1(gold, shuffled_like(predicted, np.random.default_rng(0)))["f1"]
    print(f"WNUT-16 validation entity F1 {f1:.3f} (same tags shuffled: {chance:.3f})")
    # Seeded; this 8-epoch run from scratch gives about 0.22.
    assert f1 > chance + 0.1


YEAR = re.compile(r"\b(1[0-9]{3}|20[0-2][0-9])\b")


def year_questions(articles, words=40):
    """SQuAD 2.0-style examples from real paragraphs: "In which year?" over
    40-word chunks. A chunk with exactly one year has it as the answer;
    every other chunk with none is kept as unanswerable."""
    examples = []
    for _, paragraphs in articles:
        for paragraph in paragraphs:
            tokens = paragraph.split(" ")
            for start in range(0, len(tokens), words):
                chunk = " ".join(tokens[start : start + words])
                years = list(YEAR.finditer(chunk))
                if len(years) == 1:
                    examples.append(("In which year?", chunk, years[0].start(), years[0].group()))
                elif not years and len(examples) % 2:
                    examples.append(("In which year?", chunk, -1, ""))
    return examples


def test_question_answerer_learns_answer_spans_in_wikipedia_paragraphs():
    import keras

    articles = load_wikipedia_sample()
    train, validation = year_questions(articles[:80]), year_questions(articles[80:])
    tokenizer, backbone = small_model()
    # Chunks run past one 64-token window, so training and decoding go
    # through several windows per context.
    answerer = ConvBertQuestionAnswerer(
        backbone,
        preprocessor=ConvBertQuestionAnswererPreprocessor(
            tokenizer, sequence_length=64, doc_stride=24, max_query_length=8
        ),
    )
    answerer.compile(optimizer=keras.optimizers.AdamW(1e-3, weight_decay=0.01))

    def columns(examples):
        questions, contexts, starts, texts = (np.array(c) for c in zip(*examples))
        return (questions, contexts), (starts, texts)

    x, y = columns(train)
    answerer.fit(x=x, y=y, batch_size=32, epochs=3, verbose=0)
    answers = answerer.answer(
        [e[0] for e in validation],
        [e[1] for e in validation],
        allow_no_answer=True,
        max_answer_length=5,
    )
    exact = [a["text"] == e[3] for a, e in zip(answers, validation)]
    answerable = [hit for hit, e in zip(exact, validation) if e[3]]
    majority = max(
        np.mean([bool(e[3]) for e in validation]), np.mean([not e[3] for e in validation])
    )
    print(
        f"Wikipedia year questions: exact match {np.mean(exact):.3f} "
        f"({np.mean(answerable):.3f} on answerable; majority {majority:.3f})"
    )
    # Seeded; this run gives about 0.94.
    assert np.mean(exact) > majority + 0.15
    assert np.mean(answerable) > 0.5


def test_rotten_tomatoes_test_split_holds_out_half_the_validation_movies():
    from convbert_keras.data import load_rotten_tomatoes_splits
    from convbert_keras.data.finetune_data import named_data

    (train_x, _), (val_x, _) = load_rotten_tomatoes()
    splits = load_rotten_tomatoes_splits()
    assert splits["train"][0] == train_x
    held_out = splits["validation"][0] + splits["test"][0]
    assert sorted(held_out) == sorted(val_x)
    assert 0.4 < len(splits["test"][0]) / len(val_x) < 0.6
    # The buckets are whole movies: no snippet text of a test movie is in
    # the training split (the corpus repeats no snippet across movies).
    assert not set(splits["test"][0]) & set(train_x)
    with pytest.raises(ValueError, match="must leave movies to train on"):
        load_rotten_tomatoes_splits(0.5, 0.5)
    with pytest.raises(ValueError, match=r"`test_fraction` must be in \(0, 1\)"):
        load_rotten_tomatoes_splits(0.1, 0)

    a, b, c = (named_data("rotten_tomatoes", max_train_examples=1000, seed=s) for s in (0, 0, 1))
    assert a.train[0] == b.train[0] and a.train[0] != c.train[0]
    assert len(a.train[0]) == 1000 and set(a.train[0]) <= set(train_x)
    assert a.test["test"][0] == splits["test"][0]
    assert a.validation["validation"][0] == splits["validation"][0]
