import keras
from keras import ops
from keras_hub.models import Task

from convbert_keras.layers.activations import gelu_exact
from convbert_keras.layers.dropout import PhiloxDropout
from convbert_keras.layers.initializers import convbert_kernel_initializer
from convbert_keras.models.backbone import ConvBertBackbone
from convbert_keras.models.labels import check_label_range
from convbert_keras.models.multiple_choice_preprocessor import (
    ConvBertMultipleChoicePreprocessor,
)

_INPUTS = ("token_ids", "segment_ids", "padding_mask")


@keras.saving.register_keras_serializable(package="convbert_keras")
class ConvBertMultipleChoice(Task):
    """Scores each (prompt, choice) pair and picks the best (SWAG, RACE...).

    The pairs of every example run through the backbone as one batch; the
    `[CLS]` state goes through dropout, `Dense(hidden_dim)` with exact GELU,
    dropout and `Dense(1)`, and the scores of an example form its logits.
    Compiles with XLA by default.

    Args:
        backbone: a `ConvBertBackbone`.
        preprocessor: a `ConvBertMultipleChoicePreprocessor` or `None`.
        dropout: float. Dropout of the head.

    Inputs: the backbone's dict with tensors of shape
    `(batch, num_choices, length)`. Outputs: `(batch, num_choices)` logits.

    Example:
    ```python
    model = ConvBertMultipleChoice(backbone, preprocessor=preprocessor)
    model.fit(x=(["The sky is"], [["blue", "a sandwich"]]), y=[0])
    ```
    """

    backbone_cls = ConvBertBackbone
    preprocessor_cls = ConvBertMultipleChoicePreprocessor

    def __init__(self, backbone, preprocessor=None, dropout=0.1, **kwargs):
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        policy = backbone.dtype_policy
        self.pooled_dropout = PhiloxDropout(dropout, dtype=policy, name="pooled_dropout")
        self.pooled_dense = keras.layers.Dense(
            backbone.hidden_dim,
            activation=gelu_exact,
            kernel_initializer=convbert_kernel_initializer(),
            dtype=policy,
            name="pooled_dense",
        )
        self.output_dropout = PhiloxDropout(dropout, dtype=policy, name="output_dropout")
        self.output_dense = keras.layers.Dense(
            1,
            kernel_initializer=convbert_kernel_initializer(),
            dtype="float32" if policy.compute_dtype != "float32" else policy,
            name="choice_score",
        )
        # === Functional model ===
        inputs = {
            name: keras.Input(shape=(None, None), dtype="int32", name=name) for name in _INPUTS
        }
        num_choices = ops.shape(inputs["token_ids"])[1]
        flat = {name: ops.reshape(inputs[name], (-1, ops.shape(inputs[name])[-1])) for name in _INPUTS}
        x = backbone(flat)["pooled_output"]
        x = self.pooled_dense(self.pooled_dropout(x))
        scores = self.output_dense(self.output_dropout(x))
        outputs = ops.reshape(scores, (-1, num_choices))
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        # === Config ===
        self.dropout = dropout

    def compile(self, optimizer="auto", loss="auto", *, metrics="auto", jit_compile=True, **kwargs):
        """Adam 5e-5, cross-entropy over the choices, accuracy; XLA on."""
        if optimizer == "auto":
            optimizer = keras.optimizers.Adam(5e-5)
        if loss == "auto":
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        if metrics == "auto":
            metrics = [keras.metrics.SparseCategoricalAccuracy()]
        super().compile(
            optimizer=optimizer, loss=loss, metrics=metrics, jit_compile=jit_compile, **kwargs
        )

    def preprocess_samples(self, x, y=None, sample_weight=None):
        if y is not None and isinstance(x, (tuple, list)) and len(x) == 2:
            import tensorflow as tf

            y = check_label_range(y, tf.shape(tf.convert_to_tensor(x[1]))[1])
        return super().preprocess_samples(x, y, sample_weight)

    def get_config(self):
        config = super().get_config()
        config.update({"dropout": self.dropout})
        return config
