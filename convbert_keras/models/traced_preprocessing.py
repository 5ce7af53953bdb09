from convbert_keras.models.graph_utils import kept_trace


class TracedPreprocessing:
    """A keras-hub `Task` mixin: `preprocess_samples` traced once, reused.

    keras-hub maps `preprocess_samples` over a new `tf.data` pipeline on
    every `fit`, `evaluate` and `predict` call on raw inputs, and `tf.data`
    traces it again each time: about 0.8 s for a ConvBERT preprocessor (the
    tokenizer's normalisation and splitting), more than predicting a few
    texts takes. With this mixin the map calls a `tf.function` that the
    model keeps, traced once per input structure and preprocessor
    configuration: a changed setting (say `preprocessor.sequence_length`)
    gets a trace of its own, never a stale one. Outputs are those of the
    task's own `preprocess_samples`.

    Its `fit` (validation data too), `evaluate` and `predict` also read
    in-memory inputs (lists, arrays, tensors) through one `tf.data`
    iterator a call: Keras otherwise starts two for every pass over them
    (one as it begins, one as it ends, for the next), and each start
    instantiates the preprocessing graph afresh (TensorFlow's graph
    optimisation of the tokenizer's ops: 0.2-0.5 s a start). A `predict` of
    up to `EAGER_PREDICT_BATCHES` batches starts none: the kept trace
    preprocesses them eagerly (a predict of two texts: 1.2 s before, 0.05 s
    now). Batches, their order, outputs and trained weights are those of
    keras-hub's own path.

    Place it before the keras-hub base (after `ConvBertTask`, which defines
    no `preprocess_samples`): `class ConvBertTextClassifier(ConvBertTask,
    TracedPreprocessing, ReplicaXlaSteps, TextClassifier)`.
    """

    def fit(
        self, x=None, y=None, batch_size=None, sample_weight=None, validation_data=None, **kwargs
    ):
        import keras

        if isinstance(validation_data, tuple):
            # Validated after every epoch: one iterator an epoch, not two.
            inputs = keras.utils.unpack_x_y_sample_weight(validation_data)
            batches = _one_iterator(*inputs, batch_size, kwargs, "validation_steps")[0]
            validation_data = validation_data if batches is inputs[0] else batches
        x, y, sample_weight, batch_size = _one_iterator(
            x, y, sample_weight, batch_size, kwargs, "steps_per_epoch"
        )
        return super().fit(
            x,
            y,
            batch_size=batch_size,
            sample_weight=sample_weight,
            validation_data=validation_data,
            **kwargs,
        )

    def evaluate(self, x=None, y=None, batch_size=None, sample_weight=None, **kwargs):
        x, y, sample_weight, batch_size = _one_iterator(
            x, y, sample_weight, batch_size, kwargs, "steps"
        )
        return super().evaluate(x, y, batch_size=batch_size, sample_weight=sample_weight, **kwargs)

    def predict(self, x=None, batch_size=None, **kwargs):
        import keras
        import numpy as np

        batches = _in_memory_batches(x, None, None, batch_size, kwargs, "steps")
        if batches is None:
            return super().predict(x, batch_size=batch_size, **kwargs)
        if self.preprocessor is None or int(batches.cardinality()) > EAGER_PREDICT_BATCHES:
            return super().predict(_repeated(batches, kwargs, "steps"), **kwargs)
        # Preprocessed eagerly by the kept trace, which TensorFlow
        # instantiates once; then Keras' own predict on the arrays, in the
        # same batches.
        parts = [self._kept_preprocessing()(*_arguments(batch)) for batch in batches]
        features = keras.tree.map_structure(lambda *p: np.concatenate(p), *parts)
        return keras.Model.predict(self, features, batch_size=batch_size or 32, **kwargs)

    def preprocess_samples(self, x, y=None, sample_weight=None):
        import tensorflow as tf

        if tf.executing_eagerly() or self.preprocessor is None:
            return super().preprocess_samples(x, y, sample_weight)
        return self._kept_preprocessing()(x, y, sample_weight)

    def _kept_preprocessing(self):
        # keras-hub's `preprocess_samples`: the subclasses' own only check
        # labels.
        return kept_trace(self, super().preprocess_samples, self.preprocessor.get_config())


# Up to this many batches `predict` preprocesses in-memory inputs eagerly
# (a few milliseconds a batch, where starting a `tf.data` pipeline costs
# 0.2-0.5 s); more stream through `tf.data`'s parallel map, without holding
# every example's features at once.
EAGER_PREDICT_BATCHES = 8


def _in_memory_batches(x, y, sample_weight, batch_size, arguments, steps_argument):
    """In-memory `x` (with `y` and `sample_weight`) batched as keras-hub
    batches it with `tf.data`, grain installed or not; None for anything
    else (a dataset, a declared number of steps, a `validation_split`)."""

    from convbert_keras._compat import batched_input_dataset
    from convbert_keras.data.options import pipeline_options

    if x is None or arguments.get(steps_argument) is not None or arguments.get("validation_split"):
        return None
    batches = batched_input_dataset(x, y, sample_weight, batch_size)
    if batches is x or batches.cardinality() < 1:
        return None
    return batches.with_options(pipeline_options())


def _repeated(batches, arguments, steps_argument):
    """`batches` repeated without end, with the batches of one pass set as
    `arguments[steps_argument]`: Keras then keeps one iterator for the call.
    (A repeat count would still have it start one more as the last pass
    ends.)"""
    arguments[steps_argument] = int(batches.cardinality())
    return batches.repeat()


def _one_iterator(x, y, sample_weight, batch_size, arguments, steps_argument):
    """`(x, y, sample_weight, batch_size)` as the task's `fit` or `evaluate`
    passes them on: in-memory inputs `_repeated`, anything else as it is."""
    batches = _in_memory_batches(x, y, sample_weight, batch_size, arguments, steps_argument)
    if batches is None:
        return x, y, sample_weight, batch_size
    return _repeated(batches, arguments, steps_argument), None, None, None


def _arguments(batch):
    # keras-hub packs an input tuple as a 1-tuple (pairs of texts, a
    # multiple-choice question), which tf.data's map unpacks into arguments.
    return batch if isinstance(batch, tuple) else (batch,)
