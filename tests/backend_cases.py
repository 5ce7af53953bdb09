"""The backbone and every task, as `test_backends.py` checks them on each
Keras backend: how to build each one, token-id inputs to compare outputs on,
and raw training data for `fit`. Imported under every backend (by the test,
on TensorFlow, and by `backend_worker.py`)."""

import numpy as np
import support

from convbert_keras import ConvBertBackbone
from convbert_keras import ConvBertMaskedLM
from convbert_keras import ConvBertMaskedLMPreprocessor
from convbert_keras import ConvBertMultipleChoice
from convbert_keras import ConvBertMultipleChoicePreprocessor
from convbert_keras import ConvBertQuestionAnswerer
from convbert_keras import ConvBertQuestionAnswererPreprocessor
from convbert_keras import ConvBertTextClassifier
from convbert_keras import ConvBertTokenClassifier
from convbert_keras import ConvBertTokenClassifierPreprocessor

BATCH, LENGTH, CHOICES = 3, 12, 2


def build(name):
    """The model `name`, freshly initialised, on the shallow test backbone."""
    if name == "backbone":
        return support.backbone()
    if name == "text_classifier":
        return support.sentiment_classifier()
    if name == "token_classifier":
        preprocessor = ConvBertTokenClassifierPreprocessor(
            support.tokenizer(), sequence_length=LENGTH
        )
        return ConvBertTokenClassifier(support.backbone(), num_classes=3, preprocessor=preprocessor)
    if name == "masked_lm":
        preprocessor = ConvBertMaskedLMPreprocessor(
            support.tokenizer(), sequence_length=LENGTH, mask_selection_length=4
        )
        return ConvBertMaskedLM(support.backbone(), preprocessor=preprocessor)
    if name == "question_answerer":
        preprocessor = ConvBertQuestionAnswererPreprocessor(
            support.tokenizer(), sequence_length=24, doc_stride=8, max_query_length=6
        )
        return ConvBertQuestionAnswerer(support.backbone(), preprocessor=preprocessor)
    if name == "multiple_choice":
        preprocessor = ConvBertMultipleChoicePreprocessor(
            support.tokenizer(), sequence_length=LENGTH
        )
        return ConvBertMultipleChoice(support.backbone(), preprocessor=preprocessor)
    raise ValueError(name)


NAMES = (
    "backbone",
    "text_classifier",
    "token_classifier",
    "masked_lm",
    "question_answerer",
    "multiple_choice",
)
CLASSES = {
    "backbone": ConvBertBackbone,
    "text_classifier": ConvBertTextClassifier,
    "token_classifier": ConvBertTokenClassifier,
    "masked_lm": ConvBertMaskedLM,
    "question_answerer": ConvBertQuestionAnswerer,
    "multiple_choice": ConvBertMultipleChoice,
}


def token_inputs(name, seed=0):
    """Token ids with padding, all segments used, of the shape `name` takes."""
    rng = np.random.default_rng(seed)
    length = 24 if name == "question_answerer" else LENGTH
    shape = (BATCH, CHOICES, length) if name == "multiple_choice" else (BATCH, length)
    lengths = rng.integers(length // 2, length + 1, size=shape[:-1])
    positions = np.arange(length)
    padding_mask = (positions < lengths[..., None]).astype("int32")
    inputs = {
        "token_ids": (rng.integers(5, 64, size=shape) * padding_mask).astype("int32"),
        "segment_ids": ((positions >= lengths[..., None] // 2) * padding_mask).astype("int32"),
        "padding_mask": padding_mask,
    }
    if name == "masked_lm":
        inputs["mask_positions"] = rng.integers(0, length // 2, size=(BATCH, 4)).astype("int32")
    return inputs


def outputs(model, inputs):
    """The model's outputs as one float array (the backbone's sequence output)."""
    import keras

    result = model(inputs, training=False)
    if isinstance(result, dict):
        result = result["sequence_output"]
    return keras.ops.convert_to_numpy(result)


def training_data(name):
    """`(x, y)` of raw training examples for `fit`; `y` is `None` for the
    masked LM, whose preprocessor makes its labels."""
    import tensorflow as tf

    texts = support.SENTENCES * 2
    if name == "text_classifier":
        return texts, np.array([1, 0, 1, 0, 1, 1] * 2)
    if name == "token_classifier":
        words = [text.split() for text in texts]
        tags = [[i % 3 for i in range(len(sentence))] for sentence in words]
        return tf.ragged.constant(words), tf.ragged.constant(tags)
    if name == "masked_lm":
        return texts, None
    if name == "question_answerer":
        contexts = ["the movie was good .", "the plot was bad !"] * 4
        questions = ["how was the movie ?", "how was the plot ?"] * 4
        starts = np.array([14, 13] * 4)
        answers = np.array(["good", "bad"] * 4)
        return (np.array(questions), np.array(contexts)), (starts, answers)
    if name == "multiple_choice":
        prompts = ["the film was", "the plot was"] * 4
        choices = [["good", "bad"], ["boring", "great"]] * 4
        return (prompts, choices), np.array([0, 1] * 4)
    raise ValueError(name)
