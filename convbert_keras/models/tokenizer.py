import keras
from keras_hub.tokenizers import WordPieceTokenizer

from convbert_keras.models.backbone import ConvBertBackbone


@keras.saving.register_keras_serializable(package="convbert_keras")
class ConvBertTokenizer(WordPieceTokenizer):
    """WordPiece tokenizer of the published ConvBERT models.

    The BERT uncased vocabulary and rules (lowercasing and accent stripping
    on by default, punctuation split, `[UNK]` for unknown words), with the
    special tokens `[CLS]`, `[SEP]`, `[PAD]` and `[MASK]`, which must be in
    the vocabulary.

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
