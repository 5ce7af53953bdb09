import keras
import numpy as np
from keras_hub.models import Task

from convbert_keras import metrics as official
from convbert_keras.distribute import ReplicaXlaSteps
from convbert_keras.models.backbone import ConvBertBackbone
from convbert_keras.models.convbert_task import ConvBertTask
from convbert_keras.models.convbert_task import string_spec
from convbert_keras.models.hf_weights import dense_pairs
from convbert_keras.models.question_answerer_preprocessor import (
    ConvBertQuestionAnswererPreprocessor,
)
from convbert_keras.models.task_heads import logits_dense
from convbert_keras.models.traced_preprocessing import TracedPreprocessing


@keras.saving.register_keras_serializable(package="convbert_keras")
class SpanLogits(keras.layers.Layer):
    """`(batch, length, 2)` scores to `(batch, 2, length)`: row 0 the start
    logits, row 1 the end logits, so one sparse cross-entropy over the last
    axis against `(batch, 2)` positions is the mean of the start and end
    losses."""

    def call(self, logits):
        return keras.ops.transpose(logits, (0, 2, 1))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2], input_shape[1])


@keras.saving.register_keras_serializable(package="convbert_keras")
class ConvBertQuestionAnswerer(ConvBertTask, TracedPreprocessing, ReplicaXlaSteps, Task):
    """Extractive question answering (SQuAD 1.1 and 2.0) on a ConvBERT.

    `Dense(2)` on every position of `sequence_output` scores each token as
    the answer's start and end (transformers'
    `ConvBertForQuestionAnswering`). `answer()` decodes the best span of a
    question over all windows of its context, up to `max_answer_length`
    tokens, back to the context's original text; with `allow_no_answer` it
    returns "" when the `[CLS]` score beats every span (SQuAD 2.0).
    Compiles with XLA by default.

    `fit`, `evaluate` and `predict` take raw `(questions, contexts)` with
    `y=(answer_starts, answer_texts)`; since a long context gives several
    windows, the windows of a batch of examples are re-batched to
    `batch_size` windows so that the compiled step sees one shape.

    Args:
        backbone: a `ConvBertBackbone`.
        preprocessor: a `ConvBertQuestionAnswererPreprocessor` or `None`.

    Inputs: the backbone's dict (or raw text through the preprocessor).
    Outputs: `(windows, 2, sequence_length)` start and end logits.

    Example:
    ```python
    qa = ConvBertQuestionAnswerer.from_preset("preset_dir")
    questions, contexts = ["Where is Paris?"], ["Paris is in France."]
    answer_starts, answer_texts = [12], ["France"]  # SQuAD's fields
    qa.fit(x=(questions, contexts), y=(answer_starts, answer_texts), batch_size=16)
    qa.answer(questions, contexts)
    # [{"text": "France", "score": ..., "start": 12, "end": 18}] once trained
    ```
    """

    backbone_cls = ConvBertBackbone
    preprocessor_cls = ConvBertQuestionAnswererPreprocessor
    hf_architecture = "ConvBertForQuestionAnswering"
    data_kind = "question_answering"
    batches_preprocessed = True

    def __init__(self, backbone, preprocessor=None, **kwargs):
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.output_dense = logits_dense(2, backbone.dtype_policy)
        self.span_logits = SpanLogits(dtype=self.output_dense.dtype_policy, name="span_logits")
        # === Functional model ===
        inputs = backbone.input
        sequence = backbone(inputs)["sequence_output"]
        outputs = self.span_logits(self.output_dense(sequence))
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

    def compile(
        self, optimizer="auto", loss="auto", *, metrics="auto", jit_compile="auto", **kwargs
    ):
        """Adam 5e-5, the mean start/end cross-entropy, the accuracy of the
        start and end positions; XLA on."""
        if optimizer == "auto":
            optimizer = keras.optimizers.Adam(5e-5)
        if loss == "auto":
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        if metrics == "auto":
            metrics = [keras.metrics.SparseCategoricalAccuracy(name="position_accuracy")]
        super().compile(
            optimizer=optimizer, loss=loss, metrics=metrics, jit_compile=jit_compile, **kwargs
        )

    def _window_dataset(self, x, y, batch_size, shuffle=False):
        """Raw examples (arrays or a batched `tf.data.Dataset` of
        `(x, y)`) to batches of `batch_size` preprocessed windows."""
        import tensorflow as tf

        from convbert_keras.data.options import pipeline_options

        if isinstance(x, tf.data.Dataset):
            if y is not None:
                raise ValueError("With a dataset `x`, labels come from the dataset.")
            ds = x
        else:
            ds = tf.data.Dataset.from_tensor_slices(x if y is None else (x, y))
            if shuffle:
                ds = ds.shuffle(len(x[0]), reshuffle_each_iteration=True)
            ds = ds.batch(batch_size).with_options(pipeline_options())

        def preprocess(*element):
            # `(questions, contexts)` alone, or `((questions, contexts), answers)`;
            # through `preprocess_samples`, whose trace the model keeps.
            if isinstance(element[0], tuple):
                return self.preprocess_samples(element[0], element[1])
            return self.preprocess_samples(element)

        return (
            ds.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE)
            .unbatch()
            .batch(batch_size)
            .prefetch(tf.data.AUTOTUNE)
        )

    def fit(self, x=None, y=None, batch_size=None, validation_data=None, shuffle=True, **kwargs):
        if self.preprocessor is None:
            # Backbone inputs, as every keras-hub task takes them without one.
            return keras.Model.fit(
                self,
                x,
                y,
                batch_size=batch_size,
                validation_data=validation_data,
                shuffle=shuffle,
                **kwargs,
            )
        batch_size = batch_size or 32
        x = self._window_dataset(x, y, batch_size, shuffle=shuffle)
        if validation_data is not None:
            if not hasattr(validation_data, "map"):
                validation_data = tuple(validation_data)
                validation_data = self._window_dataset(*validation_data, batch_size)
            else:
                validation_data = self._window_dataset(validation_data, None, batch_size)
        # Shuffled above, before windowing; Keras cannot shuffle a dataset.
        return keras.Model.fit(self, x, validation_data=validation_data, shuffle=False, **kwargs)

    def evaluate(self, x=None, y=None, batch_size=None, **kwargs):
        if self.preprocessor is None:
            return keras.Model.evaluate(self, x, y, batch_size=batch_size, **kwargs)
        x = self._window_dataset(x, y, batch_size or 32)
        return keras.Model.evaluate(self, x, **kwargs)

    def predict(self, x=None, batch_size=None, **kwargs):
        """Logits of every window, `(windows, 2, sequence_length)`, for raw
        `(questions, contexts)` (for backbone inputs without a preprocessor);
        see `answer()` for decoded answers."""
        if self.preprocessor is None:
            return keras.Model.predict(self, x, batch_size=batch_size, **kwargs)
        x = self._window_dataset(x, None, batch_size or 32)
        return keras.Model.predict(self, x, **kwargs)

    def answer(
        self,
        questions,
        contexts,
        max_answer_length=30,
        allow_no_answer=False,
        null_score_threshold=0.0,
        batch_size=32,
    ):
        """The best answer span of each question in its context.

        Over every window of a context, scores every span in the context,
        end not before start, at most `max_answer_length` word pieces, each
        start counted only in the window where it has the most context on
        both sides (BERT's rule); score = start + end logit (an exhaustive
        search, where BERT's script looks at the 20 best starts and ends).
        The same `best_spans` runs inside exported models.

        With `allow_no_answer` (SQuAD 2.0), the answer is "" when the
        lowest `[CLS]` score over the windows exceeds the best span's score
        by more than `null_score_threshold`.

        Returns: one dict per question: `text` (a slice of the context as
        given), `score`, `start` and `end` (character offsets, end
        exclusive; -1 for no answer).
        """
        if self.preprocessor is None:
            raise ValueError("`answer` needs a preprocessor to tokenize the text.")
        contexts = [_as_text(c) for c in contexts]
        questions = [_as_text(q) for q in questions]
        if len(questions) != len(contexts):
            raise ValueError(
                f"Got {len(questions)} questions and {len(contexts)} contexts; "
                "pass one context per question."
            )
        if not questions:
            return []
        features = self.preprocessor.windows(questions, contexts)
        features = {k: v.numpy() for k, v in features.items()}
        inputs = {k: features[k] for k in ("token_ids", "segment_ids", "padding_mask")}
        logits = keras.Model.predict(self, inputs, batch_size=batch_size, verbose=0)
        return decode_answers(
            logits,
            features,
            contexts,
            max_answer_length=max_answer_length,
            allow_no_answer=allow_no_answer,
            null_score_threshold=null_score_threshold,
        )

    @classmethod
    def checkpoint_sequence_length(cls, max_sequence_length):
        return min(384, max_sequence_length)

    def hf_head_weights(self):
        return dense_pairs(self.output_dense, "qa_outputs")

    def serving_signatures(self, label_names=None, max_answer_length=30, allow_no_answer=False):
        """`serving_default` on `question`, `context`: `answer`, `score`,
        `start` and `end` (character offsets, -1 for no answer), decoded
        by `best_spans` as `answer()` decodes."""
        import tensorflow as tf

        def answer(question, context):
            features = self.preprocessor.windows(question, context)
            inputs = {k: features[k] for k in ("token_ids", "segment_ids", "padding_mask")}
            logits = self(inputs, training=False)
            begin, end, score = _window_spans(
                logits,
                features,
                tf.size(question, out_type="int64"),
                max_answer_length=max_answer_length,
                allow_no_answer=allow_no_answer,
            )
            contexts = features["contexts"]
            found = begin >= 0
            safe_begin, safe_end = tf.maximum(begin, 0), tf.maximum(end, 0)
            text = tf.strings.substr(contexts, safe_begin, safe_end - safe_begin, unit="BYTE")
            start = tf.strings.length(
                tf.strings.substr(contexts, tf.zeros_like(safe_begin), safe_begin, unit="BYTE"),
                unit="UTF8_CHAR",
            )
            return {
                "answer": tf.where(found, text, ""),
                "score": score,
                "start": tf.where(found, tf.cast(start, "int64"), -1),
                "end": tf.where(
                    found, tf.cast(start + tf.strings.length(text, unit="UTF8_CHAR"), "int64"), -1
                ),
            }

        return {"serving_default": (answer, [string_spec("question"), string_spec("context")])}

    def warmup_requests(self):
        return [
            ("serving_default", {"question": ["What is this?"], "context": ["This is a warm-up."]})
        ]

    def training_batches(self, examples, batch_size):
        """The windows of long contexts, preprocessed and re-batched to
        `batch_size` windows."""
        return self._window_dataset(examples.batch(batch_size), None, batch_size)

    def count_training_rows(self, examples, count):
        # A long context gives several windows.
        return int(
            sum(
                int(keras.ops.shape(x["token_ids"])[0])
                for x, *_ in self.training_batches(examples, 256)
            )
        )

    def official_scores(self, examples, data, batch_size):
        """SQuAD's exact match and F1 of `(questions, contexts, gold answer
        lists)`; `data.allow_no_answer` for SQuAD 2.0."""
        questions, contexts, gold = examples
        answers = self.answer(
            questions, contexts, allow_no_answer=data.allow_no_answer, batch_size=batch_size
        )
        return official.squad_scores([a["text"] for a in answers], gold)


def _as_text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def best_spans(
    logits,
    example_index,
    window_start,
    offsets_begin,
    offsets_end,
    num_examples,
    max_answer_length=30,
    allow_no_answer=False,
    null_score_threshold=0.0,
):
    """The best answer span per example, as TensorFlow ops (used eagerly by
    `ConvBertQuestionAnswerer.answer` and inside exported signatures).

    Scores every span `start <= end` inside the context of a window, at
    most `max_answer_length` pieces, whose start piece has the most context
    in this window of all windows (BERT's `_check_is_max_context`: context =
    pieces on the nearer side + 0.01 x window length; ties go to the first
    window). Score = start + end logit. The null score of an example is its
    lowest `[CLS]` start + end score over windows; with `allow_no_answer`
    the answer is empty when the null score beats the best span by more than
    `null_score_threshold`, and it is always empty when no span is allowed.

    Returns: `(begin, end, score)` per example: byte offsets into the
    context (-1, -1 for no answer) and the score (the null score when
    there is no answer).
    """
    import tensorflow as tf

    logits = tf.cast(logits, "float32")
    example_index = tf.cast(example_index, "int64")
    start_logits, end_logits = logits[:, 0], logits[:, 1]
    in_context = offsets_begin >= 0
    length = tf.shape(logits)[-1]
    context_position = tf.cumsum(tf.cast(in_context, "int64"), axis=1) - 1
    window_length = tf.reduce_sum(tf.cast(in_context, "int64"), axis=1, keepdims=True)
    piece = tf.cast(window_start, "int64")[:, None] + context_position
    context_score = tf.cast(
        tf.minimum(context_position, window_length - 1 - context_position), "float32"
    ) + 0.01 * tf.cast(window_length, "float32")
    context_score = tf.where(in_context, context_score, -1.0)
    # Per (example, piece): the best context score, then the first window
    # reaching it.
    stride = tf.reduce_max(piece) + 2
    key = tf.where(in_context, example_index[:, None] * stride + piece, num_examples * stride)
    segments = tf.cast(num_examples, "int64") * stride + 1
    best_context = tf.math.unsorted_segment_max(context_score, key, segments)
    reaches = in_context & (context_score >= tf.gather(best_context, key))
    window = tf.broadcast_to(
        tf.range(tf.shape(logits, out_type="int64")[0])[:, None], tf.shape(key)
    )
    first_window = tf.math.unsorted_segment_min(
        tf.where(reaches, window, tf.int64.max), key, segments
    )
    max_context = reaches & (window == tf.gather(first_window, key))

    span = tf.range(length)
    span_length = span[None, :] - span[:, None] + 1
    allowed = (max_context[:, :, None] & in_context[:, None, :]) & (
        (span_length >= 1) & (span_length <= max_answer_length)
    )[None]
    scores = tf.where(allowed, start_logits[:, :, None] + end_logits[:, None, :], -float("inf"))
    flat = tf.reshape(scores, [tf.shape(scores)[0], -1])
    best_in_window = tf.reduce_max(flat, axis=1)
    choice = tf.argmax(flat, axis=1, output_type="int32")
    start, end = choice // length, choice % length
    begin_bytes = tf.gather(offsets_begin, start, batch_dims=1)
    end_bytes = tf.gather(offsets_end, end, batch_dims=1)

    best_score = tf.math.unsorted_segment_max(best_in_window, example_index, num_examples)
    is_best = best_in_window >= tf.gather(best_score, example_index)
    windows = tf.range(tf.shape(logits, out_type="int64")[0])
    best_window = tf.math.unsorted_segment_min(
        tf.where(is_best, windows, tf.int64.max), example_index, num_examples
    )
    best_window = tf.minimum(best_window, tf.shape(logits, out_type="int64")[0] - 1)
    null = tf.math.unsorted_segment_min(
        start_logits[:, 0] + end_logits[:, 0], example_index, num_examples
    )
    # Segment max starts from the lowest float, not -inf: "no span allowed"
    # shows as a huge negative score.
    no_answer = best_score < -1e30
    if allow_no_answer:
        no_answer = no_answer | (null - best_score > null_score_threshold)
    begin = tf.where(
        no_answer, tf.constant(-1, offsets_begin.dtype), tf.gather(begin_bytes, best_window)
    )
    end = tf.where(no_answer, tf.constant(-1, offsets_end.dtype), tf.gather(end_bytes, best_window))
    return begin, end, tf.where(no_answer, null, best_score)


def _window_spans(logits, features, num_examples, **options):
    """`best_spans` over the windows of `ConvBertQuestionAnswererPreprocessor.windows()`."""
    return best_spans(
        logits,
        features["example_index"],
        features["window_start"],
        features["offsets_begin"],
        features["offsets_end"],
        num_examples,
        **options,
    )


def decode_answers(
    logits,
    features,
    contexts,
    max_answer_length=30,
    allow_no_answer=False,
    null_score_threshold=0.0,
):
    """`best_spans` as dicts with the answer text and character offsets;
    see `ConvBertQuestionAnswerer.answer`. `features` is
    `ConvBertQuestionAnswererPreprocessor.windows()`; `contexts` the
    context strings."""
    begin, end, score = _window_spans(
        logits,
        features,
        len(contexts),
        max_answer_length=max_answer_length,
        allow_no_answer=allow_no_answer,
        null_score_threshold=null_score_threshold,
    )
    answers = []
    for context, b, e, value in zip(
        contexts, np.asarray(begin), np.asarray(end), np.asarray(score)
    ):
        if b < 0:
            answers.append({"text": "", "score": float(value), "start": -1, "end": -1})
            continue
        encoded = context.encode("utf-8")
        start = len(encoded[:b].decode("utf-8", errors="replace"))
        text = encoded[b:e].decode("utf-8", errors="replace")
        answers.append(
            {"text": text, "score": float(value), "start": start, "end": start + len(text)}
        )
    return answers
