import re
import unicodedata

import keras
import numpy as np
import regex
from keras_hub.tokenizers import WordPieceTokenizer

from convbert_keras._compat import PUNCTUATION_AND_CJK_REGEX
from convbert_keras.models.backbone import ConvBertBackbone
from convbert_keras.models.transformers_presets import TransformersPresets

# BERT's text cleaning. White space (tab, newline, return and every space or
# line/paragraph separator, Zs/Zl/Zp: no-break, thin, ideographic...) becomes
# a space; other control, format and private-use characters, and U+FFFD, are
# dropped.
_WHITESPACE_CATEGORIES = ("Zs", "Zl", "Zp")
_CONTROL_CATEGORIES = ("Cc", "Cf", "Co")
# The same classes for RE2, in the tf.data path.
_WHITESPACE_PATTERN = r"[\t\n\r" + "".join(rf"\p{{{c}}}" for c in _WHITESPACE_CATEGORIES) + "]"
_CONTROL_PATTERN = r"[\x{FFFD}" + "".join(rf"\p{{{c}}}" for c in _CONTROL_CATEGORIES) + "]"

# BERT's word split, on raw text: white space delimits words, punctuation and
# CJK characters are words of their own. (Dropped characters are not
# delimiters: BERT removes them before it splits, joining their neighbours.)
WORD_DELIMITER_PATTERN = "|".join([_WHITESPACE_PATTERN, PUNCTUATION_AND_CJK_REGEX])
KEPT_DELIMITER_PATTERN = PUNCTUATION_AND_CJK_REGEX

# Words longer than this many characters become `[UNK]`, as in transformers.
# tf-text and keras-hub count bytes instead, which would also refuse shorter
# words of multi-byte scripts; their byte limit is raised to the most that
# many characters can take, and longer words are replaced by a stand-in.
MAX_CHARS_PER_WORD = 100
_MAX_BYTES_PER_WORD = 4 * MAX_CHARS_PER_WORD
# After normalisation a word is a run of characters other than the space,
# BERT's punctuation and the CJK characters (keras-hub's classes, merged).
_WORD_CHARACTER = "[^ " + "".join(re.findall(r"\[(.+?)\]", KEPT_DELIMITER_PATTERN)) + "]"
# A private-use character is never in a BERT vocabulary (the cleaning drops
# them from text), so the stand-in becomes `[UNK]`.
_LONG_WORD_STAND_IN = "\ue000"


def _python_pattern(re2_pattern):
    """An RE2 pattern for the `regex` module, which spells \\x{...} as \\U."""
    return re.sub(r"\\x\{([0-9A-Fa-f]+)\}", lambda m: "\\U%08X" % int(m.group(1), 16), re2_pattern)


_PY_LONG_WORD = regex.compile(_python_pattern(_WORD_CHARACTER) + f"{{{MAX_CHARS_PER_WORD + 1},}}")


def replace_long_words(texts):
    """Normalised texts with every word over `MAX_CHARS_PER_WORD` characters
    replaced by one that the tokenizer maps to `[UNK]`."""
    import tensorflow as tf

    if isinstance(texts, tf.RaggedTensor):
        return tf.ragged.map_flat_values(replace_long_words, texts)
    if isinstance(texts, tf.Tensor):
        import tensorflow_text as tf_text

        if texts.shape.rank == 0:
            return replace_long_words(texts[None])[0]
        # Split and join again: RE2 runs out of DFA memory on the counted
        # repetition that the Python path uses.
        words = tf_text.regex_split(texts, " |" + KEPT_DELIMITER_PATTERN, KEPT_DELIMITER_PATTERN)
        too_long = tf.strings.length(words.flat_values, unit="UTF8_CHAR") > MAX_CHARS_PER_WORD
        words = words.with_flat_values(tf.where(too_long, _LONG_WORD_STAND_IN, words.flat_values))
        joined = tf.strings.reduce_join(words, axis=-1, separator=" ")
        return joined.to_tensor() if isinstance(joined, tf.RaggedTensor) else joined
    if isinstance(texts, str):
        return _PY_LONG_WORD.sub(_LONG_WORD_STAND_IN, texts)
    if isinstance(texts, np.ndarray):
        return np.vectorize(replace_long_words, otypes=[object])(texts).astype(str)
    return [replace_long_words(text) for text in texts]


def _normalize_python(text, lowercase, strip_accents):
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    out = []
    for char in text:
        category = unicodedata.category(char)
        if char in "\t\n\r" or category in _WHITESPACE_CATEGORIES:
            out.append(" ")
        elif char == "\ufffd" or category in _CONTROL_CATEGORIES:
            continue
        else:
            out.append(char)
    text = "".join(out)
    if lowercase:
        text = text.lower()
    if strip_accents:
        text = unicodedata.normalize("NFD", text)
        text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    return text


def valid_utf8(strings):
    """String tensors with every invalid UTF-8 sequence replaced by U+FFFD."""
    import tensorflow as tf

    return tf.strings.unicode_transcode(
        strings, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD
    )


def normalize_text(inputs, lowercase=True, strip_accents=True):
    """BERT's normalisation, on strings, lists/arrays or (ragged) tensors.

    Cleaning (see `_CONTROL_PATTERN`), then Python-style lowercasing, then
    NFD with combining marks removed: the order and forms of transformers'
    BasicTokenizer. (keras-hub's own lowercasing is an NFKC case fold, which
    recomposes Hangul and folds compatibility characters, so it is left off.)
    Bytes that are not valid UTF-8 become U+FFFD first, and so are dropped:
    a defined result rather than an error deep in a tf-text kernel.
    """
    import tensorflow as tf

    if isinstance(inputs, (tf.Tensor, tf.RaggedTensor)):
        import tensorflow_text as tf_text

        def normalize(t):
            t = valid_utf8(t)
            t = tf.strings.regex_replace(t, _WHITESPACE_PATTERN, " ")
            t = tf.strings.regex_replace(t, _CONTROL_PATTERN, "")
            if lowercase:
                t = tf.strings.lower(t, encoding="utf-8")
            if strip_accents:
                t = tf_text.normalize_utf8(t, "NFD")
                t = tf.strings.regex_replace(t, r"\p{Mn}", "")
            return t

        if isinstance(inputs, tf.RaggedTensor):
            return tf.ragged.map_flat_values(normalize, inputs)
        return normalize(inputs)
    if isinstance(inputs, (str, bytes)):
        return _normalize_python(inputs, lowercase, strip_accents)
    if isinstance(inputs, np.ndarray):
        return np.vectorize(
            lambda t: _normalize_python(t, lowercase, strip_accents), otypes=[object]
        )(inputs).astype(str)
    return [normalize_text(item, lowercase, strip_accents) for item in inputs]


@keras.saving.register_keras_serializable(package="convbert_keras")
class ConvBertTokenizer(TransformersPresets, WordPieceTokenizer):
    """WordPiece tokenizer of the published ConvBERT models.

    The BERT uncased vocabulary and rules, with the special tokens `[CLS]`,
    `[SEP]`, `[PAD]` and `[MASK]`, which must be in the vocabulary:
    - white space is tab, newline, return and every Unicode space, line and
      paragraph separator (Zs, Zl, Zp: no-break, thin, ideographic...);
    - control, format and private-use characters (Cc, Cf, Co), NUL, U+FFFD
      and bytes that are not valid UTF-8 are dropped;
    - lowercasing and accent stripping (NFD, then combining marks removed)
      on by default; punctuation and CJK characters are words of their own;
    - a word over 100 characters is `[UNK]`.

    Where transformers' Rust tokenizer and the original BERT (Python, which
    the published ConvBERT models were pretrained with) differ, this follows
    the original, eagerly and in `tf.data` alike: a capital sigma at the end
    of a word lowercases to final sigma `ς` as Python's `str.lower` does
    (transformers lowercases letter by letter, giving `σ`), so an upper-case
    word tokenizes as its lower-case spelling; U+2B820-U+2B91F are CJK
    characters (transformers' range starts at U+2B920); and characters
    follow current Unicode, where transformers' tables predate some recent
    marks and punctuation. Unassigned code points are kept (as `[UNK]`).

    Args:
        vocabulary: a list of word pieces or the path of a `vocab.txt`.
        lowercase: bool. Lowercase (uncased models).
        strip_accents: bool. Strip accents; `None` follows `lowercase`.
        **kwargs: `keras_hub.tokenizers.WordPieceTokenizer` arguments.

    Input: strings, scalar or batched. Output: int32 token ids (ragged when
    batched).

    Example:
    ```python
    tokenizer = ConvBertTokenizer(vocabulary="vocab.txt")
    tokenizer(["The quick brown fox."])
    ```
    """

    backbone_cls = ConvBertBackbone

    def __init__(self, vocabulary=None, lowercase=True, strip_accents=None, **kwargs):
        # BERT's rule: uncased vocabularies also strip accents.
        if strip_accents is None:
            strip_accents = lowercase
        self._add_special_token("[CLS]", "cls_token")
        self._add_special_token("[SEP]", "sep_token")
        self._add_special_token("[PAD]", "pad_token")
        self._add_special_token("[MASK]", "mask_token")
        self._add_special_token("[CLS]", "start_token")
        self._add_special_token("[SEP]", "end_token")
        # Normalisation is ours (normalize_text); the base class only splits.
        super().__init__(vocabulary=vocabulary, lowercase=False, strip_accents=False, **kwargs)
        self.bert_lowercase = lowercase
        self.bert_strip_accents = strip_accents

    def tokenize(self, inputs):
        texts = normalize_text(inputs, self.bert_lowercase, self.bert_strip_accents)
        return super().tokenize(replace_long_words(texts))

    def _set_vocabulary_tf(self):
        import tensorflow_text as tf_text

        # keras-hub's own, with room for `MAX_CHARS_PER_WORD` characters.
        self._fast_word_piece = tf_text.FastWordpieceTokenizer(
            vocab=self.vocabulary,
            token_out_type=self.compute_dtype,
            suffix_indicator=self.suffix_indicator,
            unknown_token=self.oov_token,
            max_bytes_per_word=_MAX_BYTES_PER_WORD,
            no_pretokenization=True,
            support_detokenization=True,
        )

    def _tokenize_word_python(self, word):
        # WordPiece's greedy longest-match-first split, without keras-hub's
        # 100-byte limit (`tokenize` has applied the character limit).
        pieces, start = [], 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end]
                if start:
                    piece = self.suffix_indicator + piece
                if piece in self._token_to_id_map:
                    break
            else:
                return [self.oov_token]
            pieces.append(piece)
            start = end
        return pieces

    def get_config(self):
        config = super().get_config()
        config.update({"lowercase": self.bert_lowercase, "strip_accents": self.bert_strip_accents})
        return config
