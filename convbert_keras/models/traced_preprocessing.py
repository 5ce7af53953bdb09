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

    Place it before the keras-hub base (after `ConvBertTask`, which defines
    no `preprocess_samples`): `class ConvBertTextClassifier(ConvBertTask,
    TracedPreprocessing, ReplicaXlaSteps, TextClassifier)`.
    """

    def preprocess_samples(self, x, y=None, sample_weight=None):
        import tensorflow as tf

        if tf.executing_eagerly() or self.preprocessor is None:
            return super().preprocess_samples(x, y, sample_weight)
        trace = kept_trace(self, super().preprocess_samples, self.preprocessor.get_config())
        return trace(x, y, sample_weight)
