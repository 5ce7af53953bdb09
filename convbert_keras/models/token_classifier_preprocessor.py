import keras
from keras_hub.layers import StartEndPacker
from keras_hub.models import Preprocessor

from convbert_keras._compat import preprocessing_function
from convbert_keras.models.backbone import ConvBertBackbone
from convbert_keras.models.graph_utils import PackedSequenceLength
from convbert_keras.models.graph_utils import run_in_graph
from convbert_keras.models.graph_utils import run_on_one_example
from convbert_keras.models.tokenizer import ConvBertTokenizer
from convbert_keras.models.transformers_presets import TransformersPresets

IGNORE = -1


@keras.saving.register_keras_serializable(package="convbert_keras")
class ConvBertTokenClassifierPreprocessor(PackedSequenceLength, TransformersPresets, Preprocessor):
    """Word-level examples (NER, POS) to ConvBERT token inputs.

    Each word is split into word pieces. A word's label goes to its first
    piece; the other pieces, `[CLS]`, `[SEP]` and padding get sample weight
    0, so they are left out of the loss and the metrics. A word that
    normalises to nothing (a lone control character) becomes `[UNK]`, so
    that labels stay aligned. Sequences longer than `sequence_length` are
    truncated (the words cut off get no prediction). Runs in `tf.data`.

    Args:
        tokenizer: a `ConvBertTokenizer`.
        sequence_length: int. Padded length.

    Call arguments: `x` a (ragged) batch of words `[batch, (words)]`, or
    one example's words; `y` optional matching int labels.
    Returns: `x` the backbone inputs; with `y`, also the per-token labels
    `(batch, sequence_length)` and `sample_weight` (1 on first pieces).

    Example:
    ```python
    preprocessor = ConvBertTokenClassifierPreprocessor.from_preset("preset_dir")
    x, y, w = preprocessor(
        tf.ragged.constant([["Paris", "is", "lovely"]]), tf.ragged.constant([[1, 0, 0]])
    )
    ```
    """

    backbone_cls = ConvBertBackbone
    tokenizer_cls = ConvBertTokenizer
    PACKERS = ("packer", "label_packer")

    def __init__(self, tokenizer, sequence_length=512, **kwargs):
        super().__init__(**kwargs)
        self.tokenizer = tokenizer
        self.sequence_length = sequence_length

    def build(self, input_shape):
        super().build(input_shape)
        self.packer = StartEndPacker(
            start_value=self.tokenizer.start_token_id,
            end_value=self.tokenizer.end_token_id,
            pad_value=self.tokenizer.pad_token_id,
            sequence_length=self.sequence_length,
            return_padding_mask=True,
        )
        self.label_packer = StartEndPacker(
            start_value=IGNORE,
            end_value=IGNORE,
            pad_value=IGNORE,
            sequence_length=self.sequence_length,
        )

    def _pieces(self, words):
        """Word pieces `[batch, (words), (pieces)]`, at least one per word."""
        import tensorflow as tf

        if not isinstance(words, tf.RaggedTensor):
            words = tf.RaggedTensor.from_tensor(tf.convert_to_tensor(words))
        pieces = self.tokenizer(words)
        per_word = pieces.values
        empty = tf.cast(per_word.row_lengths() == 0, "int64")
        unk = tf.RaggedTensor.from_row_lengths(
            tf.fill(
                [tf.reduce_sum(empty)],
                tf.cast(self.tokenizer.token_to_id(self.tokenizer.oov_token), per_word.dtype),
            ),
            empty,
        )
        per_word = tf.concat([per_word, unk], axis=1)
        return pieces.with_values(per_word)

    def first_piece_mask(self, words):
        """`(batch, sequence_length)` booleans: True on each word's first piece.

        Row `b`'s k-th True position belongs to word k of example `b`.
        """
        return run_in_graph(self._first_piece_mask, words)

    def _first_piece_mask(self, words):
        import tensorflow as tf

        pieces = self._pieces(words)
        first = tf.ragged.range(pieces.values.row_lengths()) == 0
        first = pieces.with_values(first).merge_dims(1, 2)
        packed = self.label_packer(tf.cast(first, "int32"))
        return packed > 0

    @preprocessing_function
    def call(self, x, y=None, sample_weight=None):
        if sample_weight is not None:
            raise ValueError(
                "ConvBertTokenClassifierPreprocessor makes its own sample "
                "weights (first word pieces); pass labels only."
            )
        import tensorflow as tf

        batch = (x,) if y is None else (x, y)
        if not isinstance(x, tf.RaggedTensor) and tf.convert_to_tensor(x).shape.rank == 1:
            return run_on_one_example(self._call_tf, *batch)  # one example's words
        return run_in_graph(self._call_tf, *batch)

    def _call_tf(self, x, y=None):
        import tensorflow as tf

        pieces = self._pieces(x)
        token_ids, padding_mask = self.packer(pieces.merge_dims(1, 2))
        inputs = {
            "token_ids": token_ids,
            "segment_ids": tf.zeros_like(token_ids),
            "padding_mask": padding_mask,
        }
        if y is None:
            return inputs
        if not isinstance(y, tf.RaggedTensor):
            y = tf.RaggedTensor.from_tensor(tf.convert_to_tensor(y))
        labels = tf.cast(y, "int32")
        per_word = pieces.values
        first = tf.ragged.range(per_word.row_lengths()) == 0
        word_labels = tf.gather(labels.values, per_word.value_rowids())
        piece_labels = tf.where(first.values, word_labels, IGNORE)
        piece_labels = pieces.with_values(per_word.with_values(piece_labels)).merge_dims(1, 2)
        packed = self.label_packer(piece_labels)
        weights = tf.cast(packed != IGNORE, "float32")
        return inputs, tf.maximum(packed, 0), weights

    def get_config(self):
        config = super().get_config()
        config.update({"sequence_length": self.sequence_length})
        return config
