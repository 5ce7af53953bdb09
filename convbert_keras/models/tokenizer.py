import unicodedata

import keras
import numpy as np
from keras_hub.tokenizers import WordPieceTokenizer

from convbert_keras.models.backbone import ConvBertBackbone


# BERT's text cleaning: tab, newline and return are spaces; other control and
# format characters, NUL and U+FFFD are dropped.
_CONTROL_PATTERN = r"[\x{FFFD}\p{Cc}\p{Cf}]"


def _clean_python(text):
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
    return "".join(out)


def clean_text(inputs):
    """BERT's text cleaning, on strings, lists/arrays or (ragged) tensors.

    Bytes that are not valid UTF-8 become U+FFFD first, and so are dropped:
    a defined result rather than an error deep in a tf-text kernel.
    """
    import tensorflow as tf

    if isinstance(inputs, (tf.Tensor, tf.RaggedTensor)):
        def clean(t):
            t = tf.strings.unicode_transcode(
                t, "UTF-8", "UTF-8", errors="replace", replacement_char=0xFFFD
            )
            t = tf.strings.regex_replace(t, r"[\t\n\r]", " ")
            return tf.strings.regex_replace(t, _CONTROL_PATTERN, "")

        if isinstance(inputs, tf.RaggedTensor):
            return tf.ragged.map_flat_values(clean, inputs)
        return clean(inputs)
    if isinstance(inputs, (str, bytes)):
        return _clean_python(inputs)
    if isinstance(inputs, np.ndarray):
        return np.vectorize(_clean_python, otypes=[object])(inputs).astype(str)
    return [clean_text(item) for item in inputs]


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
        lowercase: bool. Lowercase and strip accents (uncased models).
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

    def __init__(self, vocabulary=None, lowercase=True, **kwargs):
        self._add_special_token("[CLS]", "cls_token")
        self._add_special_token("[SEP]", "sep_token")
        self._add_special_token("[PAD]", "pad_token")
        self._add_special_token("[MASK]", "mask_token")
        self._add_special_token("[CLS]", "start_token")
        self._add_special_token("[SEP]", "end_token")
        super().__init__(vocabulary=vocabulary, lowercase=lowercase, **kwargs)

    def tokenize(self, inputs):
        return super().tokenize(clean_text(inputs))
