import keras
from keras_hub.models import TextClassifierPreprocessor

from convbert_keras.models.backbone import ConvBertBackbone
from convbert_keras.models.tokenizer import ConvBertTokenizer
from convbert_keras.models.transformers_presets import TransformersPresets


@keras.saving.register_keras_serializable(package="convbert_keras")
class ConvBertTextClassifierPreprocessor(TransformersPresets, TextClassifierPreprocessor):
    """Turns raw strings, or pairs of them, into ConvBERT inputs.

    Tokenizes each segment, joins them as `[CLS] a [SEP] b [SEP]`, truncates
    to `sequence_length` and pads. Runs inside `tf.data` (and in exports).

    Args:
        tokenizer: a `ConvBertTokenizer`.
        sequence_length: int. Padded length of the outputs.
        truncate: `"waterfall"` (default: trims the last segment first, and
            needs no op that TF Serving builds lack) or `"round_robin"`.

    Call arguments: `x` a string tensor (batch or scalar) or a tuple of them
    for pairs; optional `y` and `sample_weight` pass through.
    Returns: `{"token_ids", "segment_ids", "padding_mask"}` (and `y`,
    `sample_weight` when given).

    Example:
    ```python
    preprocessor = ConvBertTextClassifierPreprocessor.from_preset("preset_dir")
    preprocessor(["The quick brown fox."])
    preprocessor(x=(["a question?"], ["an answer."]))
    ```
    """

    backbone_cls = ConvBertBackbone
    tokenizer_cls = ConvBertTokenizer

    def __init__(self, tokenizer, sequence_length=512, truncate="waterfall", **kwargs):
        super().__init__(
            tokenizer=tokenizer,
            sequence_length=sequence_length,
            truncate=truncate,
            **kwargs,
        )
