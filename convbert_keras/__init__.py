"""ConvBERT for Keras 3 and TensorFlow."""

from convbert_keras import convert  # noqa: F401  (the subpackage as an attribute)
from convbert_keras.layers import ConvBertEncoderLayer
from convbert_keras.layers import GroupedDense
from convbert_keras.layers import HashDropout
from convbert_keras.layers import MixedAttention
from convbert_keras.layers import SpanDynamicConv
from convbert_keras.models import CONVBERT_CONFIGS
from convbert_keras.models import ConvBertBackbone
from convbert_keras.models import ConvBertMaskedLM
from convbert_keras.models import ConvBertMaskedLMPreprocessor
from convbert_keras.models import ConvBertMultipleChoice
from convbert_keras.models import ConvBertMultipleChoicePreprocessor
from convbert_keras.models import ConvBertQuestionAnswerer
from convbert_keras.models import ConvBertQuestionAnswererPreprocessor
from convbert_keras.models import ConvBertTextClassifier
from convbert_keras.models import ConvBertTextClassifierPreprocessor
from convbert_keras.models import ConvBertTokenClassifier
from convbert_keras.models import ConvBertTokenClassifierPreprocessor
from convbert_keras.models import ConvBertTokenizer
from convbert_keras.models import build_vocabulary
from convbert_keras.models import convbert_config

__version__ = "0.1.0"

__all__ = [
    "CONVBERT_CONFIGS",
    "ConvBertBackbone",
    "ConvBertEncoderLayer",
    "ConvBertMaskedLM",
    "ConvBertMaskedLMPreprocessor",
    "ConvBertMultipleChoice",
    "ConvBertMultipleChoicePreprocessor",
    "ConvBertQuestionAnswerer",
    "ConvBertQuestionAnswererPreprocessor",
    "ConvBertTextClassifier",
    "ConvBertTextClassifierPreprocessor",
    "ConvBertTokenClassifier",
    "ConvBertTokenClassifierPreprocessor",
    "ConvBertTokenizer",
    "GroupedDense",
    "HashDropout",
    "MixedAttention",
    "SpanDynamicConv",
    "build_vocabulary",
    "convbert_config",
]
