import keras
from keras_hub.models import MaskedLM

from convbert_keras.distribute import ReplicaXlaSteps
from convbert_keras.models.backbone import ConvBertBackbone
from convbert_keras.models.masked_lm_preprocessor import ConvBertMaskedLMPreprocessor
from convbert_keras.models.task_heads import masked_lm_head


@keras.saving.register_keras_serializable(package="convbert_keras")
class ConvBertMaskedLM(ReplicaXlaSteps, MaskedLM):
    """ConvBERT with the generator head of the paper's pretraining.

    At each masked position: `Dense(embedding_dim)`, exact GELU,
    `LayerNorm`, then logits against the word embeddings plus a bias
    (transformers' `ConvBertForMaskedLM`). Compiles with XLA by default.

    Args:
        backbone: a `ConvBertBackbone`.
        preprocessor: a `ConvBertMaskedLMPreprocessor` or `None`.
        tie_word_embeddings: bool. Whether the logits use the backbone's
            word embeddings (the default, as pretrained) or a decoder table
            of their own (transformers' `tie_word_embeddings=False`).

    Inputs: the backbone's dict plus `mask_positions` `(batch, M)`.
    Outputs: `(batch, M, vocabulary_size)` logits.

    Example:
    ```python
    masked_lm = ConvBertMaskedLM.from_preset("preset_dir")
    masked_lm.fit(x=["The quick brown fox jumped."], batch_size=1)
    ```
    """

    backbone_cls = ConvBertBackbone
    preprocessor_cls = ConvBertMaskedLMPreprocessor

    def __init__(self, backbone, preprocessor=None, tie_word_embeddings=True, **kwargs):
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.masked_lm_head = masked_lm_head(backbone, "mlm_head", tie_word_embeddings)
        # === Functional model ===
        inputs = {
            **backbone.input,
            "mask_positions": keras.Input(shape=(None,), dtype="int32", name="mask_positions"),
        }
        sequence = backbone(backbone.input)["sequence_output"]
        outputs = self.masked_lm_head(sequence, inputs["mask_positions"])
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        # === Config ===
        self.tie_word_embeddings = tie_word_embeddings

    def compile(
        self, optimizer="auto", loss="auto", *, weighted_metrics="auto", jit_compile=True, **kwargs
    ):
        """`MaskedLM.compile` with XLA on by default."""
        super().compile(
            optimizer=optimizer,
            loss=loss,
            weighted_metrics=weighted_metrics,
            jit_compile=jit_compile,
            **kwargs,
        )

    def get_config(self):
        config = super().get_config()
        config.update({"tie_word_embeddings": self.tie_word_embeddings})
        return config
