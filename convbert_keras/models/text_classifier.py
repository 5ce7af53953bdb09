import keras
from keras_hub.models import TextClassifier

from convbert_keras.distribute import ReplicaXlaSteps
from convbert_keras.models.backbone import ConvBertBackbone
from convbert_keras.models.labels import check_label_range
from convbert_keras.models.task_heads import pool_sequence
from convbert_keras.models.task_heads import pooled_head_layers
from convbert_keras.models.text_classifier_preprocessor import ConvBertTextClassifierPreprocessor
from convbert_keras.models.traced_preprocessing import TracedPreprocessing


@keras.saving.register_keras_serializable(package="convbert_keras")
class ConvBertTextClassifier(TracedPreprocessing, ReplicaXlaSteps, TextClassifier):
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

    def compile(self, optimizer="auto", loss="auto", *, metrics="auto", jit_compile=True, **kwargs):
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
