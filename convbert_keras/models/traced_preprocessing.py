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
    iterator a call: Keras
    otherwise starts two for every pass over them (one as it begins, one
    as it ends, for the next), and each start instantiates the
    preprocessing graph afresh (TensorFlow's graph optimisation of the
    tokenizer's ops: 0.2-0.5 s a start; a `predict` of a few texts took
    twice that). The batches, their order, the outputs and the trained
    weights are those of keras-hub's own path.

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
        x, _, _, batch_size = _one_iterator(x, None, None, batch_size, kwargs, "steps")
        return super().predict(x, batch_size=batch_size, **kwargs)

    def preprocess_samples(self, x, y=None, sample_weight=None):
        import tensorflow as tf

        if tf.executing_eagerly() or self.preprocessor is None:
            return super().preprocess_samples(x, y, sample_weight)
        trace = kept_trace(self, super().preprocess_samples, self.preprocessor.get_config())
        return trace(x, y, sample_weight)


def _one_iterator(x, y, sample_weight, batch_size, arguments, steps_argument):
    """In-memory `x` (with `y` and `sample_weight`) batched as keras-hub
    batches it with `tf.data`, repeated without end, with the batches of one
    pass set as `arguments[steps_argument]`: Keras then keeps one iterator
    for the call. (A repeat count would still have it start one more as the
    last pass ends.) Anything else (a dataset, a declared number of steps,
    a `validation_split`, batches keras-hub makes with grain, which it
    repeats itself) is returned as it is."""
    import tensorflow as tf

    from convbert_keras._compat import batched_input_dataset

    unchanged = x, y, sample_weight, batch_size
    if x is None or arguments.get(steps_argument) is not None or arguments.get("validation_split"):
        return unchanged
    batches = batched_input_dataset(x, y, sample_weight, batch_size)
    if batches is x or not isinstance(batches, tf.data.Dataset) or batches.cardinality() < 1:
        return unchanged
    arguments[steps_argument] = int(batches.cardinality())
    return batches.repeat(), None, None, None
