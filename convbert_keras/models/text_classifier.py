import keras
import numpy as np
from keras_hub.models import TextClassifier

from convbert_keras import metrics as official
from convbert_keras.distribute import ReplicaXlaSteps
from convbert_keras.models.backbone import ConvBertBackbone
from convbert_keras.models.convbert_task import WARMUP_TEXTS
from convbert_keras.models.convbert_task import ConvBertTask
from convbert_keras.models.convbert_task import hf_num_labels
from convbert_keras.models.convbert_task import string_spec
from convbert_keras.models.hf_weights import dense_pairs
from convbert_keras.models.labels import check_label_range
from convbert_keras.models.task_heads import pool_sequence
from convbert_keras.models.task_heads import pooled_head_layers
from convbert_keras.models.text_classifier_preprocessor import ConvBertTextClassifierPreprocessor
from convbert_keras.models.traced_preprocessing import TracedPreprocessing


@keras.saving.register_keras_serializable(package="convbert_keras")
class ConvBertTextClassifier(ConvBertTask, TracedPreprocessing, ReplicaXlaSteps, TextClassifier):
    """Sequence classification (or regression) on top of a ConvBERT.

    The head of the reference implementation: the `[CLS]` state, dropout,
    `Dense(hidden_dim)`, exact GELU, dropout, `Dense(num_classes)`; or,
    with `pooling="mean"`, the same head on the mean of the token states
    (better after a short pretraining, whose `[CLS]` state carries little). With
    `num_classes=1` it is a regressor (e.g. STS-B) trained with mean squared
    error. Compiles with XLA (`jit_compile=True`) by default; tokenization
    stays in the preprocessor, outside the compiled step.

    Args:
        backbone: a `ConvBertBackbone`.
        num_classes: int. Number of classes, or 1 for regression.
        preprocessor: a `ConvBertTextClassifierPreprocessor` or `None`
            (then the model takes token ids).
        activation: activation of the logits; `None` gives logits.
        dropout: float. Dropout of the head.
        pooling: `"cls"` (the reference head, default) or `"mean"`.

    Inputs: raw strings through the preprocessor, or the backbone's dict.
    Outputs: `(batch, num_classes)` logits (or values for regression).

    Example:
    ```python
    classifier = ConvBertTextClassifier.from_preset("preset_dir", num_classes=2)
    classifier.fit(x=["great film", "dull plot"], y=[1, 0], batch_size=2)
    classifier.predict(["what a movie"])
    ```
    """

    backbone_cls = ConvBertBackbone
    preprocessor_cls = ConvBertTextClassifierPreprocessor
    hf_architecture = "ConvBertForSequenceClassification"
    data_kind = "classification"

    def __init__(
        self,
        backbone,
        num_classes,
        preprocessor=None,
        activation=None,
        dropout=0.1,
        pooling="cls",
        **kwargs,
    ):
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(
                "`num_classes` must be a positive integer (1 for regression). "
                f"Received: {num_classes!r}"
            )
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        (
            self.pooled_dropout,
            self.pooled_dense,
            self.output_dropout,
            self.output_dense,
        ) = pooled_head_layers(backbone, num_classes, dropout, activation=activation)
        # === Functional model ===
        inputs = backbone.input
        x = pool_sequence(backbone, inputs, pooling)
        x = self.pooled_dense(self.pooled_dropout(x))
        outputs = self.output_dense(self.output_dropout(x))
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        # === Config ===
        self.num_classes = num_classes
        self.activation = keras.activations.get(activation)
        self.dropout = dropout
        self.pooling = pooling

    def compile(
        self, optimizer="auto", loss="auto", *, metrics="auto", jit_compile="auto", **kwargs
    ):
        """`TextClassifier.compile`, with XLA on by default, and mean squared
        error with mean absolute error as defaults for regression."""
        # Task.__init__ compiles before `num_classes` is set: ask the head.
        if self.output_dense.units == 1:
            if loss == "auto":
                loss = keras.losses.MeanSquaredError()
            if metrics == "auto":
                metrics = [keras.metrics.MeanAbsoluteError()]
        super().compile(
            optimizer=optimizer, loss=loss, metrics=metrics, jit_compile=jit_compile, **kwargs
        )

    def preprocess_samples(self, x, y=None, sample_weight=None):
        if y is not None and self.num_classes > 1:
            y = check_label_range(y, self.num_classes)
        return super().preprocess_samples(x, y, sample_weight)

    @classmethod
    def arguments_from_hf_config(cls, hf_config):
        return {"num_classes": hf_num_labels(hf_config)}

    @classmethod
    def arguments_for_data(cls, data, pooling="cls"):
        return {"num_classes": data.num_classes, "pooling": pooling}

    def hf_head_weights(self):
        return dense_pairs(self.pooled_dense, "classifier.dense") + dense_pairs(
            self.output_dense, "classifier.out_proj"
        )

    def serving_signatures(self, label_names=None, max_answer_length=30, allow_no_answer=False):
        """`serving_default` on `text` and `classify_pair` on `text_a`,
        `text_b`: `probabilities`, `label` and, given `label_names`,
        `label_name`; a regressor gives `score`."""
        import tensorflow as tf

        if label_names and len(label_names) != self.num_classes:
            raise ValueError(
                f"{len(label_names)} label names for {self.num_classes} classes; "
                "give one name per class, in id order."
            )

        def outputs(inputs):
            logits = tf.cast(self(inputs, training=False), "float32")
            if self.num_classes == 1:
                return {"score": logits[:, 0]}
            probabilities = tf.nn.softmax(logits)
            label = tf.argmax(probabilities, axis=-1)
            result = {"probabilities": probabilities, "label": label}
            if label_names:
                result["label_name"] = tf.gather(tf.constant(label_names), label)
            return result

        def classify(text):
            return outputs(self.preprocessor(text))

        def classify_pair(text_a, text_b):
            return outputs(self.preprocessor(x=(text_a, text_b)))

        return {
            "serving_default": (classify, [string_spec("text")]),
            "classify_pair": (classify_pair, [string_spec("text_a"), string_spec("text_b")]),
        }

    def warmup_requests(self):
        return [
            ("serving_default", {"text": WARMUP_TEXTS}),
            ("classify_pair", {"text_a": WARMUP_TEXTS[:1], "text_b": WARMUP_TEXTS[1:]}),
        ]

    def official_scores(self, examples, data, batch_size):
        """`data.metrics` of `examples`: `(x, y)` in memory or a
        `tf.data.Dataset` of unbatched `(x, y)`."""
        import tensorflow as tf

        if isinstance(examples, tf.data.Dataset):
            pairs = list(examples.batch(1024).as_numpy_iterator())
            x = (
                tuple(np.concatenate([p[0][i] for p in pairs]) for i in range(len(pairs[0][0])))
                if isinstance(pairs[0][0], tuple)
                else np.concatenate([p[0] for p in pairs])
            )
            y = np.concatenate([p[1] for p in pairs])
        else:
            x, y = examples
        outputs = self.predict(x, batch_size=batch_size, verbose=0)
        predictions = outputs[:, 0] if self.num_classes == 1 else outputs.argmax(-1)
        return {name: getattr(official, name)(y, predictions) for name in data.metrics}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "activation": keras.activations.serialize(self.activation),
                "dropout": self.dropout,
                "pooling": self.pooling,
            }
        )
        return config
