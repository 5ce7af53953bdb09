import keras
from keras_hub.models import Preprocessor

from convbert_keras.models.backbone import ConvBertBackbone
from convbert_keras.models.graph_utils import run_in_graph
from convbert_keras.models.tokenizer import KEPT_DELIMITER_PATTERN
from convbert_keras.models.tokenizer import WORD_DELIMITER_PATTERN
from convbert_keras.models.tokenizer import ConvBertTokenizer
from convbert_keras.models.tokenizer import valid_utf8
from convbert_keras.models.transformers_presets import TransformersPresets


def _char_to_byte(strings, char_offsets):
    """Byte offsets of character offsets (clipped to the string)."""
    import tensorflow as tf

    prefix = tf.strings.substr(
        strings, tf.zeros_like(char_offsets), tf.maximum(char_offsets, 0), unit="UTF8_CHAR"
    )
    return tf.cast(tf.strings.length(prefix, unit="BYTE"), "int64")


def _ragged_fill(value, count):
    """`[count, (1)]` ragged rows holding `value`."""
    import tensorflow as tf

    return tf.RaggedTensor.from_tensor(tf.fill(tf.stack([count, 1]), value))


@keras.saving.register_keras_serializable(package="convbert_keras")
class ConvBertQuestionAnswererPreprocessor(TransformersPresets, Preprocessor):
    """Question + context to ConvBERT windows for extractive QA (SQuAD).

    The question's word pieces (at most `max_query_length`) and a window of
    the context's pieces are packed as `[CLS] question [SEP] context [SEP]`.
    A context too long for one window is covered by several, each starting
    `doc_stride` pieces after the previous one (the original BERT meaning of
    the stride: windows overlap by `window - doc_stride` pieces), so one
    example can give several rows. Runs in `tf.data` and in exports.

    Every context piece keeps the byte span, in the context as given, of
    the word it comes from (words as BERT's basic tokenizer splits them:
    on whitespace, around punctuation and CJK characters), so that a token
    span maps back to the original text, casing and accents included.

    Args:
        tokenizer: a `ConvBertTokenizer`.
        sequence_length: int. Padded length of a window.
        doc_stride: int. Pieces between the starts of consecutive windows.
        max_query_length: int. Question pieces kept (the rest are cut).

    Call arguments: `x` a pair `(questions, contexts)` of string tensors;
    optional `y` a pair `(answer_starts, answer_texts)`: the answer's start
    as a character offset into the context and its text (SQuAD's fields);
    a start below 0 or an empty text means "no answer" (SQuAD 2.0).
    Returns: the backbone inputs, one row per window; with `y`, also the
    `(windows, 2)` int32 start and end token positions of the answer in
    each window, `(0, 0)` (`[CLS]`) where the window does not hold it.
    `windows()` also returns what decoding needs.

    Example:
    ```python
    preprocessor = ConvBertQuestionAnswererPreprocessor.from_preset("preset_dir")
    x, y = preprocessor(
        x=(["Where is Paris?"], ["Paris is in France."]), y=([12], ["France"])
    )
    ```
    """

    backbone_cls = ConvBertBackbone
    tokenizer_cls = ConvBertTokenizer

    def __init__(
        self, tokenizer, sequence_length=384, doc_stride=128, max_query_length=64, **kwargs
    ):
        super().__init__(**kwargs)
        if max_query_length + 4 > sequence_length:
            raise ValueError(
                f"`max_query_length` ({max_query_length}) leaves no room for the "
                f"context in a window of `sequence_length` {sequence_length}: "
                "it must be at most sequence_length - 4."
            )
        if doc_stride < 1:
            raise ValueError(f"`doc_stride` must be >= 1. Received: {doc_stride}")
        self.tokenizer = tokenizer
        self.sequence_length = sequence_length
        self.doc_stride = doc_stride
        self.max_query_length = max_query_length

    def call(self, x, y=None, sample_weight=None):
        questions, contexts = self._unpack(x)
        answers = None if y is None else self._unpack_answers(y)
        features = run_in_graph(self._windows_tf, questions, contexts, answers)
        inputs = {k: features[k] for k in ("token_ids", "segment_ids", "padding_mask")}
        if y is None:
            return inputs
        if sample_weight is not None:
            raise ValueError(
                "Sample weights are per example but the preprocessor outputs one "
                "row per window; weight examples by repeating them instead."
            )
        return inputs, features["positions"]

    def windows(self, questions, contexts):
        """Windows with the extras decoding needs, as a dict of tensors.

        Besides the backbone inputs: `example_index` (the example each
        window comes from), `window_start` (index of its first context
        piece in the whole context), `offsets_begin` / `offsets_end`
        (`(windows, sequence_length)` byte span in the context of the word
        each position belongs to, -1 outside the context) and `contexts`
        (the contexts as valid UTF-8, which the offsets index).
        """
        questions, contexts = self._unpack((questions, contexts))
        return run_in_graph(self._windows_tf, questions, contexts, None)

    def _unpack(self, x):
        import tensorflow as tf

        if not isinstance(x, (tuple, list)) or len(x) != 2:
            raise ValueError(
                "ConvBertQuestionAnswererPreprocessor takes `x=(questions, "
                f"contexts)`, a pair of string batches. Received: {type(x).__name__}"
            )
        questions, contexts = (tf.convert_to_tensor(t) for t in x)
        if questions.shape.rank == 0:
            questions, contexts = questions[None], contexts[None]
        return questions, contexts

    def _unpack_answers(self, y):
        import tensorflow as tf

        if not isinstance(y, (tuple, list)) or len(y) != 2:
            raise ValueError(
                "Answers are `y=(answer_starts, answer_texts)`: the character "
                "offset of each answer in its context and the answer text "
                "(start -1 or text '' for no answer)."
            )
        starts, texts = tf.convert_to_tensor(y[0]), tf.convert_to_tensor(y[1])
        if starts.shape.rank == 0:
            starts, texts = starts[None], texts[None]
        return tf.cast(starts, "int64"), texts

    def _windows_tf(self, questions, contexts, answers):
        import tensorflow as tf
        import tensorflow_text as tf_text

        contexts = valid_utf8(contexts)
        question_ids = self.tokenizer(questions)[:, : self.max_query_length]
        # BERT's basic split with the tokenizer's own patterns, on the
        # original text so that every word keeps its byte span there.
        words, word_begin, word_end = tf_text.regex_split_with_offsets(
            contexts, WORD_DELIMITER_PATTERN, KEPT_DELIMITER_PATTERN
        )
        word_ids = self.tokenizer(words)
        pieces = word_ids.merge_dims(1, 2)
        piece_word = word_ids.values.value_rowids()
        piece_begin = pieces.with_values(tf.gather(word_begin.values, piece_word))
        piece_end = pieces.with_values(tf.gather(word_end.values, piece_word))

        # Windows: each example's context pieces in chunks of `room`, one
        # every `doc_stride` pieces, until the last chunk reaches the end.
        question_length = question_ids.row_lengths()
        context_length = pieces.row_lengths()
        room = self.sequence_length - 3 - question_length
        overflow = tf.maximum(context_length - room, 0)
        num_windows = 1 + (overflow + self.doc_stride - 1) // self.doc_stride
        window_start = (tf.ragged.range(num_windows) * self.doc_stride).values
        example = tf.repeat(tf.range(tf.size(num_windows, out_type="int64")), num_windows)
        window_length = tf.minimum(
            tf.gather(room, example), tf.gather(context_length, example) - window_start
        )
        first = tf.gather(pieces.row_starts(), example) + window_start
        index = tf.ragged.range(first, first + window_length)

        def window_values(ragged):
            return index.with_values(tf.gather(ragged.values, index.values))

        count = tf.size(example)
        cls = _ragged_fill(tf.cast(self.tokenizer.cls_token_id, pieces.dtype), count)
        sep = _ragged_fill(tf.cast(self.tokenizer.sep_token_id, pieces.dtype), count)
        question = tf.gather(question_ids, example)
        context = window_values(pieces)
        token_ids = tf.concat([cls, question, sep, context, sep], axis=1)
        segment_ids = tf.concat(
            [
                tf.zeros_like(cls),
                tf.zeros_like(question),
                tf.zeros_like(sep),
                tf.ones_like(context),
                tf.ones_like(sep),
            ],
            axis=1,
        )
        shape = [None, self.sequence_length]
        none = _ragged_fill(tf.constant(-1, "int64"), count)
        question_none = tf.zeros_like(question, "int64") - 1

        def offsets(context_offsets):
            ragged = tf.concat([none, question_none, none, context_offsets, none], axis=1)
            return ragged.to_tensor(-1, shape=shape)

        features = {
            "token_ids": token_ids.to_tensor(self.tokenizer.pad_token_id, shape=shape),
            "segment_ids": segment_ids.to_tensor(0, shape=shape),
            "padding_mask": tf.ones_like(token_ids, "bool").to_tensor(False, shape=shape),
            "example_index": example,
            "window_start": window_start,
            "offsets_begin": offsets(window_values(piece_begin)),
            "offsets_end": offsets(window_values(piece_end)),
            "contexts": contexts,
        }
        if answers is not None:
            features["positions"] = self._positions(
                contexts,
                answers,
                piece_begin,
                piece_end,
                example,
                window_start,
                window_length,
                question_length,
            )
        return features

    def _positions(
        self,
        contexts,
        answers,
        piece_begin,
        piece_end,
        example,
        window_start,
        window_length,
        question_length,
    ):
        """Answer start/end token positions per window (0 when outside)."""
        import tensorflow as tf

        starts, texts = answers
        text_chars = tf.cast(tf.strings.length(texts, unit="UTF8_CHAR"), "int64")
        begin_byte = _char_to_byte(contexts, starts)
        end_byte = _char_to_byte(contexts, starts + text_chars)
        # The answer's pieces: from the first piece ending after its start to
        # the last piece beginning before its end.
        first_piece = tf.reduce_sum(tf.cast(piece_end <= begin_byte[:, None], "int64"), axis=1)
        last_piece = tf.reduce_sum(tf.cast(piece_begin < end_byte[:, None], "int64"), axis=1) - 1
        answerable = (starts >= 0) & (text_chars > 0) & (first_piece <= last_piece)
        first_piece = tf.gather(first_piece, example) - window_start
        last_piece = tf.gather(last_piece, example) - window_start
        inside = tf.gather(answerable, example) & (first_piece >= 0) & (last_piece < window_length)
        shift = tf.gather(question_length, example) + 2
        positions = tf.stack([first_piece + shift, last_piece + shift], axis=1)
        return tf.cast(tf.where(inside[:, None], positions, 0), "int32")

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "sequence_length": self.sequence_length,
                "doc_stride": self.doc_stride,
                "max_query_length": self.max_query_length,
            }
        )
        return config
