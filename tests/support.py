"""Helpers shared by the test modules: the tiny fixture vocabulary and the
tiny models built on it."""

import os

import numpy as np
from conftest import FIXTURES
from run_modules import with_pythonpath

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

# Praise and criticism, for the learning tests.
POSITIVE = ["the movie was good", "a great film", "good plot and great actor", "great story"]
NEGATIVE = ["the movie was bad", "a boring film", "bad plot and bad actor", "boring story"]


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


def spread(model, seed=0):
    """Every weight far from initialisation (std 1.5/sqrt(fan_in) for
    matrices, as `convbert_keras.lab.reference.spread_weights` does for
    transformers): peaked attention and dynamic kernels, so that every
    branch moves the logits and a wrong one shows."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        shape, name = variable.shape, variable.path
        if "embeddings" in name:
            value = rng.normal(0, 1.0, shape)
        elif name.endswith("gamma"):
            value = 1 + rng.normal(0, 0.2, shape)
        elif len(shape) == 1:
            value = rng.normal(0, 0.2, shape)
        else:
            value = rng.normal(0, 1.5 / np.sqrt(np.prod(shape[:-1])), shape)
        variable.assign(value.astype(variable.dtype))


def script_environment():
    """The environment of a script's process: this one's (the suite's
    start-up folder on PYTHONPATH included, see run_modules.py) with the
    repository on PYTHONPATH, TensorFlow's info logs off and no TF_CONFIG."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    env = with_pythonpath(dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), root)
    env.pop("TF_CONFIG", None)
    return env


def printed_by(main, argv):
    """What a command-line tool's `main(argv)` prints when run in this
    process, where a script's process would add only TensorFlow's start-up.
    It must return None: the script's exit status 0."""
    import contextlib
    import io

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(argv) is None
    return printed.getvalue()


def train_step_traces(model, *args, **kwargs):
    """How many times `model.fit(*args, **kwargs)` traces Keras' train
    step (it runs only while a step function is traced)."""
    from unittest import mock

    from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

    step = TensorFlowTrainer.train_step
    with mock.patch.object(TensorFlowTrainer, "train_step", autospec=True, side_effect=step) as spy:
        history = model.fit(*args, **kwargs)
    return spy.call_count, history
