import unicodedata

import keras
import numpy as np
from keras_hub.tokenizers import WordPieceTokenizer

from convbert_keras.models.backbone import ConvBertBackbone


# BERT's text cleaning: tab, newline and return are spaces; other control and
# format characters, NUL and U+FFFD are dropped.
_CONTROL_PATTERN = r"[\x{FFFD}\p{Cc}\p{Cf}]"


def _normalize_python(text, lowercase, strip_accents):
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    out = []
    for char in text:
        if char in "\t\n\r":
            out.append(" ")
        elif char == "\ufffd" or unicodedata.category(char) in ("Cc", "Cf"):
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
            t = tf.strings.regex_replace(t, r"[\t\n\r]", " ")
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
class ConvBertTokenizer(WordPieceTokenizer):
    """WordPiece tokenizer of the published ConvBERT models.

    The BERT uncased vocabulary and rules (control characters dropped,
    lowercasing and accent stripping on by default, punctuation and CJK
    split, `[UNK]` for unknown words and words over 100 bytes), with the
    special tokens `[CLS]`, `[SEP]`, `[PAD]` and `[MASK]`, which must be in
    the vocabulary. Bytes that are not valid UTF-8 are dropped.

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
        return super().tokenize(
            normalize_text(inputs, self.bert_lowercase, self.bert_strip_accents)
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {"lowercase": self.bert_lowercase, "strip_accents": self.bert_strip_accents}
        )
        return config
