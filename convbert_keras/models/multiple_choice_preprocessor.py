import keras
from keras_hub.layers import MultiSegmentPacker
from keras_hub.models import Preprocessor

from convbert_keras._compat import preprocessing_function
from convbert_keras.models.backbone import ConvBertBackbone
from convbert_keras.models.graph_utils import PackedSequenceLength
from convbert_keras.models.graph_utils import run_in_graph
from convbert_keras.models.graph_utils import run_on_one_example
from convbert_keras.models.tokenizer import ConvBertTokenizer
from convbert_keras.models.transformers_presets import TransformersPresets


@keras.saving.register_keras_serializable(package="convbert_keras")
class ConvBertMultipleChoicePreprocessor(PackedSequenceLength, TransformersPresets, Preprocessor):
    """A prompt and its candidate answers to ConvBERT inputs, one row each.

    Every choice is paired with the prompt as `[CLS] prompt [SEP] choice
    [SEP]` (waterfall truncation: the choice is trimmed first), giving
    inputs of shape `(batch, num_choices, sequence_length)`.

    Args:
        tokenizer: a `ConvBertTokenizer`.
        sequence_length: int. Padded length of each pair.

    Call arguments: `x = (prompts, choices)`: `prompts` a `(batch,)` string
    tensor, `choices` `(batch, num_choices)` strings (or one example: a
    prompt and its `(num_choices,)` choices); optional `y` (index of the
    right choice) passes through.

    Example:
    ```python
    tokenizer = ConvBertTokenizer(vocabulary="vocab.txt")
    preprocessor = ConvBertMultipleChoicePreprocessor(tokenizer, sequence_length=64)
    x = preprocessor(x=(["The sky is"], [["blue", "a sandwich"]]))
    x["token_ids"].shape  # (1, 2, 64)
    ```
    """

    backbone_cls = ConvBertBackbone
    tokenizer_cls = ConvBertTokenizer

    def __init__(self, tokenizer, sequence_length=512, **kwargs):
        super().__init__(**kwargs)
        self.tokenizer = tokenizer
        self.sequence_length = sequence_length

    def build(self, input_shape):
        super().build(input_shape)
        self.packer = MultiSegmentPacker(
            start_value=self.tokenizer.start_token_id,
            end_value=self.tokenizer.end_token_id,
            pad_value=self.tokenizer.pad_token_id,
            truncate="waterfall",
            sequence_length=self.sequence_length,
        )

    def _pack(self, prompts, choices):
        import tensorflow as tf

        choices = tf.convert_to_tensor(choices)
        num_choices = tf.shape(choices)[1]
        repeated = tf.repeat(tf.convert_to_tensor(prompts), num_choices)
        flat = tf.reshape(choices, [-1])
        token_ids, segment_ids = self.packer((self.tokenizer(repeated), self.tokenizer(flat)))
        shape = [-1, num_choices, self.sequence_length]
        return {
            "token_ids": tf.reshape(token_ids, shape),
            "segment_ids": tf.reshape(segment_ids, shape),
            "padding_mask": tf.reshape(
                tf.cast(token_ids != self.tokenizer.pad_token_id, "int32"), shape
            ),
        }

    @preprocessing_function
    def call(self, x, y=None, sample_weight=None):
        if not isinstance(x, (tuple, list)) or len(x) != 2:
            raise ValueError(
                "ConvBertMultipleChoicePreprocessor takes x=(prompts, choices), "
                "choices of shape (batch, num_choices)."
            )
        import tensorflow as tf

        prompts, choices = tf.convert_to_tensor(x[0]), tf.convert_to_tensor(x[1])
        if choices.shape.rank == 1:
            inputs = run_on_one_example(self._pack, prompts, choices)  # one example
        else:
            inputs = run_in_graph(self._pack, prompts, choices)
        return keras.utils.pack_x_y_sample_weight(inputs, y, sample_weight)

    def get_config(self):
        config = super().get_config()
        config.update({"sequence_length": self.sequence_length})
        return config
