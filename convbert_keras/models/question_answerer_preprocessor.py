import keras
from keras_hub.models import Preprocessor

from convbert_keras._compat import preprocessing_function
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


def _gather_or(values, index, valid, default):
    """`values[index]` where `valid`, `default` elsewhere (where `index` may
    be out of range, even for empty `values`)."""
    import tensorflow as tf

    padded = tf.concat([values, tf.fill([1], tf.cast(default, values.dtype))], axis=0)
    safe = tf.where(valid, index, tf.size(values, out_type=index.dtype))
    return tf.gather(padded, safe)


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

    @classmethod
    def length_defaults(cls, sequence_length):
        """SQuAD's windows (384 tokens, stride 128, questions cut at 64)
        scaled to shorter sequences; the stride stays at most 128 beyond."""
        return {
            "sequence_length": sequence_length,
            "doc_stride": max(1, min(128, sequence_length // 3)),
            "max_query_length": min(64, sequence_length // 4),
        }

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

    @preprocessing_function
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
        # Each piece's word's byte span, flat: one value per piece.
        piece_word = word_ids.values.value_rowids()
        piece_begin = tf.gather(word_begin.values, piece_word)
        piece_end = tf.gather(word_end.values, piece_word)

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

        # `[CLS] question [SEP] context [SEP]` and padding, assembled
        # position by position from the flat piece values: ragged
        # concatenation builds a graph several times as large (traced anew
        # for every input pipeline).
        position = tf.range(self.sequence_length, dtype="int64")[None, :]
        question_end = tf.gather(question_length, example)[:, None] + 1
        context_end = question_end + 1 + window_length[:, None]
        in_question = (position >= 1) & (position < question_end)
        in_context = (position > question_end) & (position < context_end)
        question_index = tf.gather(question_ids.row_starts(), example)[:, None] + position - 1
        context_index = first[:, None] + position - question_end - 1

        def context_values(values, default):
            return _gather_or(values, context_index, in_context, default)

        ids = pieces.dtype
        is_sep = (position == question_end) | (position == context_end)
        token_ids = tf.where(
            position == 0,
            tf.cast(self.tokenizer.cls_token_id, ids),
            tf.where(
                is_sep,
                tf.cast(self.tokenizer.sep_token_id, ids),
                tf.where(
                    in_question,
                    _gather_or(question_ids.values, question_index, in_question, 0),
                    context_values(pieces.values, self.tokenizer.pad_token_id),
                ),
            ),
        )
        features = {
            "token_ids": token_ids,
            "segment_ids": tf.cast(in_context | (position == context_end), ids),
            "padding_mask": position <= context_end,
            "example_index": example,
            "window_start": window_start,
            "offsets_begin": context_values(piece_begin, -1),
            "offsets_end": context_values(piece_end, -1),
            "contexts": contexts,
        }
        if answers is not None:
            features["positions"] = self._positions(
                contexts,
                answers,
                pieces.value_rowids(),
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
        piece_example,
        piece_begin,
        piece_end,
        example,
        window_start,
        window_length,
        question_length,
    ):
        """Answer start/end token positions per window (0 when outside).
        `piece_example`, `piece_begin` and `piece_end` hold one value per
        context piece: its example, and its word's byte span."""
        import tensorflow as tf

        starts, texts = answers
        text_chars = tf.cast(tf.strings.length(texts, unit="UTF8_CHAR"), "int64")
        begin_byte = _char_to_byte(contexts, starts)
        end_byte = _char_to_byte(contexts, starts + text_chars)

        # The answer's pieces: from the first piece ending after its start to
        # the last piece beginning before its end.
        def pieces_where(condition):
            return tf.math.unsorted_segment_sum(
                tf.cast(condition, "int64"), piece_example, tf.size(starts)
            )

        first_piece = pieces_where(piece_end <= tf.gather(begin_byte, piece_example))
        last_piece = pieces_where(piece_begin < tf.gather(end_byte, piece_example)) - 1
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
