import json


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

    Place it before the keras-hub base (after `ConvBertTask`, which defines
    no `preprocess_samples`): `class ConvBertTextClassifier(ConvBertTask,
    TracedPreprocessing, ReplicaXlaSteps, TextClassifier)`.
    """

    def preprocess_samples(self, x, y=None, sample_weight=None):
        import tensorflow as tf

        if tf.executing_eagerly() or self.preprocessor is None:
            return super().preprocess_samples(x, y, sample_weight)
        key = json.dumps(self.preprocessor.get_config(), sort_keys=True, default=str)
        # A plain dict set past Keras' attribute tracking: the traces are
        # not part of the model's state, its saved files or its exports.
        traces = self.__dict__.setdefault("_preprocessing_traces", {})
        if key not in traces:
            traces[key] = tf.function(super().preprocess_samples, reduce_retracing=True)
        return traces[key](x, y, sample_weight)
