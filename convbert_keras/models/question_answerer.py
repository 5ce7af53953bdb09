import keras
import numpy as np
from keras_hub.models import Task

from convbert_keras.models.backbone import ConvBertBackbone
from convbert_keras.models.heads import logits_dense
from convbert_keras.models.question_answerer_preprocessor import (
    ConvBertQuestionAnswererPreprocessor,
)


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
class ConvBertQuestionAnswerer(Task):
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
    qa.fit(x=(questions, contexts), y=(answer_starts, answer_texts), batch_size=16)
    qa.answer(["Where is Paris?"], ["Paris is in France."])
    # [{"text": "France", "score": ..., "start": 12, "end": 18}]
    ```
    """

    backbone_cls = ConvBertBackbone
    preprocessor_cls = ConvBertQuestionAnswererPreprocessor

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

    def compile(self, optimizer="auto", loss="auto", *, metrics="auto", jit_compile=True, **kwargs):
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

        if self.preprocessor is None:
            raise ValueError(
                "ConvBertQuestionAnswerer needs a preprocessor for raw text; "
                "pass backbone inputs to keras.Model.fit directly otherwise."
            )
        if isinstance(x, tf.data.Dataset):
            if y is not None:
                raise ValueError("With a dataset `x`, labels come from the dataset.")
            ds = x
        else:
            ds = tf.data.Dataset.from_tensor_slices(x if y is None else (x, y))
            if shuffle:
                ds = ds.shuffle(len(x[0]), reshuffle_each_iteration=True)
            ds = ds.batch(batch_size)

        def preprocess(*element):
            # `(questions, contexts)` alone, or `((questions, contexts), answers)`.
            # Keyword `x`: a positional tuple would be read as `(x, y)`.
            if isinstance(element[0], tuple):
                return self.preprocessor(x=element[0], y=element[1])
            return self.preprocessor(x=element)

        return (
            ds.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE)
            .unbatch()
            .batch(batch_size)
            .prefetch(tf.data.AUTOTUNE)
        )

    def fit(self, x=None, y=None, batch_size=None, validation_data=None, shuffle=True, **kwargs):
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
        x = self._window_dataset(x, y, batch_size or 32)
        return keras.Model.evaluate(self, x, **kwargs)

    def predict(self, x=None, batch_size=None, **kwargs):
        """Logits of every window, `(windows, 2, sequence_length)`, for raw
        `(questions, contexts)`; see `answer()` for decoded answers."""
        x = self._window_dataset(x, None, batch_size or 32)
        return keras.Model.predict(self, x, **kwargs)

    def answer(self, questions, contexts, max_answer_length=30, n_best=20,
               allow_no_answer=False, null_score_threshold=0.0, batch_size=32):
        """The best answer span of each question in its context.

        Over every window of a context, scores the spans among the `n_best`
        start and end positions that lie in the context, end not before
        start, at most `max_answer_length` word pieces, and each start
        counted only in the window where it has the most context on both
        sides (BERT's rule). Score = start + end logit.

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
            logits, features, contexts, max_answer_length=max_answer_length,
            n_best=n_best, allow_no_answer=allow_no_answer,
            null_score_threshold=null_score_threshold,
        )


def _as_text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def decode_answers(logits, features, contexts, max_answer_length=30, n_best=20,
                   allow_no_answer=False, null_score_threshold=0.0):
    """Best spans from window logits; see `ConvBertQuestionAnswerer.answer`.

    `features` is `ConvBertQuestionAnswererPreprocessor.windows()` as numpy
    arrays and `contexts` the context strings.
    """
    best = [None] * len(contexts)
    null = [np.inf] * len(contexts)
    in_context = features["offsets_begin"] >= 0
    # A piece's context in a window: the pieces on its nearer side, plus a
    # tie-break favouring longer windows (BERT's `_check_is_max_context`).
    context_position = np.cumsum(in_context, axis=1) - 1
    window_length = in_context.sum(axis=1)
    piece = features["window_start"][:, None] + context_position
    context_score = np.minimum(context_position, window_length[:, None] - 1 - context_position)
    context_score = context_score + 0.01 * window_length[:, None]
    max_context = {}
    for w in range(len(logits)):
        example = features["example_index"][w]
        for p, score in zip(piece[w][in_context[w]], context_score[w][in_context[w]]):
            if score > max_context.get((example, p), (-1, None))[0]:
                max_context[(example, p)] = (score, w)

    for w, (start_logits, end_logits) in enumerate(logits):
        example = features["example_index"][w]
        null[example] = min(null[example], start_logits[0] + end_logits[0])
        valid = in_context[w]
        starts = [i for i in np.argsort(-start_logits)[:n_best] if valid[i]]
        ends = [i for i in np.argsort(-end_logits)[:n_best] if valid[i]]
        for s in starts:
            if max_context[(example, piece[w][s])][1] != w:
                continue
            for e in ends:
                if e < s or e - s + 1 > max_answer_length:
                    continue
                score = float(start_logits[s] + end_logits[e])
                if best[example] is None or score > best[example][0]:
                    best[example] = (
                        score, features["offsets_begin"][w][s], features["offsets_end"][w][e]
                    )

    answers = []
    for example, context in enumerate(contexts):
        encoded = context.encode("utf-8")
        span = best[example]
        if span is None or (allow_no_answer and null[example] - span[0] > null_score_threshold):
            answers.append({"text": "", "score": float(null[example]), "start": -1, "end": -1})
            continue
        score, begin, end = span
        start = len(encoded[:begin].decode("utf-8", errors="replace"))
        text = encoded[begin:end].decode("utf-8", errors="replace")
        answers.append({"text": text, "score": score, "start": start, "end": start + len(text)})
    return answers
