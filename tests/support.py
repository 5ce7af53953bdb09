"""Helpers shared by the test modules: the tiny fixture vocabulary and the
tiny models built on it."""

import os

from conftest import FIXTURES

from convbert_keras import ConvBertBackbone
from convbert_keras import ConvBertTextClassifier
from convbert_keras import ConvBertTextClassifierPreprocessor
from convbert_keras import ConvBertTokenizer

# Fixture vocabulary (scripts/make_reference_fixtures.py): [PAD]=0 [UNK]=1
# [CLS]=2 [SEP]=3 [MASK]=4 the=5 ... movie=16 film=17 good=18 bad=19
# great=20 ... ##s=30 .=33 ,=34 !=35
VOCAB = os.path.join(FIXTURES, "tiny", "vocab.txt")

# A ConvBERT small enough to train in seconds, on the fixture vocabulary.
TINY = dict(
    vocabulary_size=64,
    num_layers=2,
    num_heads=4,
    hidden_dim=32,
    embedding_dim=16,
    intermediate_dim=64,
    max_sequence_length=32,
)

# `TINY` one layer deep, for runs whose checks (resumption, replicas,
# records, settings) do not depend on depth: each layer adds tracing and XLA
# compilation to every run.
SHALLOW = dict(TINY, num_layers=1)

SENTENCES = [
    "the movie was good.",
    "the plot was bad!",
    "a great film and a funny story.",
    "the actor was boring?",
    "hello world.",
    "it was a good movie and a bad plot.",
]


def tokenizer():
    return ConvBertTokenizer(vocabulary=VOCAB)


def backbone(**overrides):
    """`SHALLOW` with a 3-wide convolution and no dropout, as the task tests
    train it: they check heads, preprocessing, learning, saving and export,
    none of which depends on depth."""
    return ConvBertBackbone(**dict(SHALLOW, conv_kernel_size=3, dropout=0.0, **overrides))


def sentiment_classifier(num_classes=2, **overrides):
    """A classifier on `backbone(**overrides)`, for texts of up to 12 pieces."""
    preprocessor = ConvBertTextClassifierPreprocessor(tokenizer(), sequence_length=12)
    return ConvBertTextClassifier(
        backbone(**overrides), num_classes=num_classes, preprocessor=preprocessor
    )


def keras_logits(model, x):
    """`model`'s outputs for the raw inputs `x` (texts, or a tuple of text
    segments), called eagerly: the reference an export's answers are
    compared with. (`predict` would XLA-compile each new batch size first.)"""
    import keras

    return keras.ops.convert_to_numpy(model(model.preprocessor(x=x), training=False))
