import keras
from keras_hub.models import MaskedLMPreprocessor

from convbert_keras.models.backbone import ConvBertBackbone
from convbert_keras.models.tokenizer import ConvBertTokenizer
from convbert_keras.models.transformers_presets import TransformersPresets


@keras.saving.register_keras_serializable(package="convbert_keras")
class ConvBertMaskedLMPreprocessor(TransformersPresets, MaskedLMPreprocessor):
    """Raw strings to masked-language-model training examples for ConvBERT.

    Tokenizes and packs like `ConvBertTextClassifierPreprocessor`, then
    selects `mask_selection_rate` of the non-special tokens (at most
    `mask_selection_length`); of those, `mask_token_rate` become `[MASK]`,
    `random_token_rate` random tokens, the rest stay. Runs in `tf.data`.

    Args:
        tokenizer: a `ConvBertTokenizer`.
        sequence_length: int. Padded length.
        truncate: `"waterfall"` (default) or `"round_robin"`.
        **kwargs: `mask_selection_rate`, `mask_selection_length`,
            `mask_token_rate`, `random_token_rate` and the other arguments
            of `keras_hub.models.MaskedLMPreprocessor`.

    Returns `(x, y, sample_weight)`: `x` the backbone inputs plus
    `mask_positions`, `y` the original ids at those positions,
    `sample_weight` 1 for real selections and 0 for padding.

    Example:
    ```python
    preprocessor = ConvBertMaskedLMPreprocessor.from_preset("preset_dir")
    x, y, sample_weight = preprocessor(["The quick brown fox jumped."])
    ```
    """

    backbone_cls = ConvBertBackbone
    tokenizer_cls = ConvBertTokenizer

    def __init__(self, tokenizer, sequence_length=512, truncate="waterfall", **kwargs):
        super().__init__(
            tokenizer=tokenizer, sequence_length=sequence_length, truncate=truncate, **kwargs
        )
