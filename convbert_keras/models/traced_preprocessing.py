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

    Its `fit` also feeds a run of several epochs on in-memory inputs
    (lists, arrays, tensors) from one `tf.data` iterator: Keras otherwise
    starts two for every epoch (one as it begins, one as it ends), and each
    start instantiates the preprocessing graph afresh (TensorFlow's graph
    optimisation of the tokenizer's ops: 0.2-0.5 s a start, up to a second
    an epoch on a small task). The batches, their order and the
    trained weights are those of the epochs run one by one.

    Place it before the keras-hub base (after `ConvBertTask`, which defines
    no `preprocess_samples`): `class ConvBertTextClassifier(ConvBertTask,
    TracedPreprocessing, ReplicaXlaSteps, TextClassifier)`.
    """

    def fit(self, x=None, y=None, batch_size=None, sample_weight=None, **kwargs):
        batches = _batches_for_epochs(x, y, sample_weight, batch_size, kwargs)
        if batches is not None:
            # Repeated without end: with a count Keras would still start one
            # more iterator as the last epoch ends.
            kwargs["steps_per_epoch"] = int(batches.cardinality())
            x, y, sample_weight, batch_size = batches.repeat(), None, None, None
        return super().fit(x, y, batch_size=batch_size, sample_weight=sample_weight, **kwargs)

    def preprocess_samples(self, x, y=None, sample_weight=None):
        import tensorflow as tf

        if tf.executing_eagerly() or self.preprocessor is None:
            return super().preprocess_samples(x, y, sample_weight)
        trace = kept_trace(self, super().preprocess_samples, self.preprocessor.get_config())
        return trace(x, y, sample_weight)


def _batches_for_epochs(x, y, sample_weight, batch_size, fit_arguments):
    """The `tf.data` batches keras-hub's `fit` would build from in-memory
    `x`, when it would build them with `tf.data` (grain's datasets keras-hub
    repeats itself) for more than one epoch whose length Keras is not told;
    else None."""
    import tensorflow as tf

    from convbert_keras._compat import batched_input_dataset

    epochs = fit_arguments.get("epochs", 1) - fit_arguments.get("initial_epoch", 0)
    if (
        epochs < 2
        or x is None
        or fit_arguments.get("steps_per_epoch") is not None
        or fit_arguments.get("validation_split")
    ):
        return None
    batches = batched_input_dataset(x, y, sample_weight, batch_size)
    if batches is x or not isinstance(batches, tf.data.Dataset) or batches.cardinality() < 1:
        return None
    return batches
