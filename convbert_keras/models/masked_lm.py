import keras
import numpy as np
from keras_hub.models import MaskedLM

from convbert_keras._compat import masked_lm_head_parts
from convbert_keras.distribute import ReplicaXlaSteps
from convbert_keras.models.backbone import ConvBertBackbone
from convbert_keras.models.convbert_task import ConvBertTask
from convbert_keras.models.hf_weights import DECODER
from convbert_keras.models.hf_weights import WORD_EMBEDDINGS
from convbert_keras.models.hf_weights import copy_array
from convbert_keras.models.hf_weights import dense_pairs
from convbert_keras.models.hf_weights import norm_pairs
from convbert_keras.models.masked_lm_preprocessor import ConvBertMaskedLMPreprocessor
from convbert_keras.models.task_heads import masked_lm_head


@keras.saving.register_keras_serializable(package="convbert_keras")
class ConvBertMaskedLM(ConvBertTask, ReplicaXlaSteps, MaskedLM):
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
    hf_architecture = "ConvBertForMaskedLM"

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
        self,
        optimizer="auto",
        loss="auto",
        *,
        weighted_metrics="auto",
        jit_compile="auto",
        **kwargs,
    ):
        """`MaskedLM.compile` with XLA on by default."""
        super().compile(
            optimizer=optimizer,
            loss=loss,
            weighted_metrics=weighted_metrics,
            jit_compile=jit_compile,
            **kwargs,
        )

    @classmethod
    def arguments_from_hf_config(cls, hf_config):
        # transformers' default, and that of every published ConvBERT.
        return {"tie_word_embeddings": hf_config.get("tie_word_embeddings", True)}

    def hf_head_weights(self):
        dense, norm, bias = masked_lm_head_parts(self.masked_lm_head)
        pairs = [
            *dense_pairs(dense, "generator_predictions.dense"),
            *norm_pairs(norm, "generator_predictions.LayerNorm"),
            (bias, "generator_lm_head.bias", copy_array),
        ]
        if not self.tie_word_embeddings:
            # (vocabulary, embedding) in both: a Linear's weight and a table.
            pairs.append((self.masked_lm_head.token_embedding.embeddings, DECODER, copy_array))
        return pairs

    def check_hf_weights(self, state, source):
        """A checkpoint whose decoder (`generator_lm_head.weight`) is not its
        word embeddings is refused by a model that ties them, naming both."""
        if not self.tie_word_embeddings or DECODER not in state or WORD_EMBEDDINGS not in state:
            return
        decoder, embeddings = state[DECODER], state[WORD_EMBEDDINGS]
        if np.shape(decoder) == np.shape(embeddings):
            difference = f"by up to {np.abs(decoder - embeddings).max():.3g}"
        else:
            difference = f"in shape, {np.shape(decoder)} against {np.shape(embeddings)}"
        raise ValueError(
            f"{source} has an untied masked LM head: its decoder {DECODER} "
            f"differs from {WORD_EMBEDDINGS} {difference}, but this "
            "ConvBertMaskedLM ties its decoder to the word embeddings, which "
            "would drop the checkpoint's decoder. Build the model with "
            "`ConvBertMaskedLM(backbone, tie_word_embeddings=False)`; "
            "convert_checkpoint does so when the checkpoint's config.json "
            'has "tie_word_embeddings": false.'
        )

    def get_config(self):
        config = super().get_config()
        config.update({"tie_word_embeddings": self.tie_word_embeddings})
        return config
