import keras
from keras import ops
from keras_hub.models import Task

from convbert_keras.distribute import ReplicaXlaSteps
from convbert_keras.models.backbone import ConvBertBackbone
from convbert_keras.models.convbert_task import ConvBertTask
from convbert_keras.models.labels import check_label_range
from convbert_keras.models.multiple_choice_preprocessor import ConvBertMultipleChoicePreprocessor
from convbert_keras.models.task_heads import pooled_head_layers
from convbert_keras.models.traced_preprocessing import TracedPreprocessing

_INPUTS = ("token_ids", "segment_ids", "padding_mask")


@keras.saving.register_keras_serializable(package="convbert_keras")
class ChoiceFlatten(keras.layers.Layer):
    """`(batch, num_choices, length)` to `(batch * num_choices, length)`."""

    def call(self, inputs):
        return ops.reshape(inputs, (-1, ops.shape(inputs)[-1]))

    def compute_output_shape(self, input_shape):
        return (None, input_shape[-1])


@keras.saving.register_keras_serializable(package="convbert_keras")
class ChoiceUnflatten(keras.layers.Layer):
    """Scores `(batch * num_choices, 1)` back to `(batch, num_choices)`."""

    def call(self, scores, reference):
        return ops.reshape(scores, (-1, ops.shape(reference)[1]))

    def compute_output_shape(self, scores_shape, reference_shape):
        return (reference_shape[0], reference_shape[1])


@keras.saving.register_keras_serializable(package="convbert_keras")
class ConvBertMultipleChoice(ConvBertTask, TracedPreprocessing, ReplicaXlaSteps, Task):
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
    backbone = ConvBertBackbone.from_preset("preset_dir")
    tokenizer = ConvBertTokenizer.from_preset("preset_dir")
    preprocessor = ConvBertMultipleChoicePreprocessor(tokenizer, sequence_length=32)
    model = ConvBertMultipleChoice(backbone, preprocessor=preprocessor)
    model.fit(x=(["The sky is"], [["blue", "a sandwich"]]), y=[0])
    ```
    """

    backbone_cls = ConvBertBackbone
    preprocessor_cls = ConvBertMultipleChoicePreprocessor
    # No `hf_architecture`: transformers' `ConvBertForMultipleChoice` summarises
    # a choice by its last position (a padding token in a padded batch) with no
    # projection, a head this one does not reproduce.

    def __init__(self, backbone, preprocessor=None, dropout=0.1, **kwargs):
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        (
            self.pooled_dropout,
            self.pooled_dense,
            self.output_dropout,
            self.output_dense,
        ) = pooled_head_layers(backbone, 1, dropout, output_name="choice_score")
        # === Functional model ===
        inputs = {
            name: keras.Input(shape=(None, None), dtype="int32", name=name) for name in _INPUTS
        }
        flatten = ChoiceFlatten(name="choice_flatten")
        flat = {name: flatten(inputs[name]) for name in _INPUTS}
        x = backbone(flat)["pooled_output"]
        x = self.pooled_dense(self.pooled_dropout(x))
        scores = self.output_dense(self.output_dropout(x))
        outputs = ChoiceUnflatten(name="choice_unflatten")(scores, inputs["token_ids"])
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        # === Config ===
        self.dropout = dropout

    def compile(
        self, optimizer="auto", loss="auto", *, metrics="auto", jit_compile="auto", **kwargs
    ):
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
