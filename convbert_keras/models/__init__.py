"""ConvBERT models: backbone, tokenizer, preprocessors, tasks, configurations."""

from convbert_keras.models.backbone import ConvBertBackbone
from convbert_keras.models.configs import CONVBERT_CONFIGS
from convbert_keras.models.configs import convbert_config
from convbert_keras.models.masked_lm import ConvBertMaskedLM
from convbert_keras.models.masked_lm_preprocessor import ConvBertMaskedLMPreprocessor
from convbert_keras.models.multiple_choice import ConvBertMultipleChoice
from convbert_keras.models.multiple_choice_preprocessor import ConvBertMultipleChoicePreprocessor
from convbert_keras.models.question_answerer import ConvBertQuestionAnswerer
from convbert_keras.models.question_answerer_preprocessor import (
    ConvBertQuestionAnswererPreprocessor,
)
from convbert_keras.models.text_classifier import ConvBertTextClassifier
from convbert_keras.models.text_classifier_preprocessor import ConvBertTextClassifierPreprocessor
from convbert_keras.models.token_classifier import ConvBertTokenClassifier
from convbert_keras.models.token_classifier_preprocessor import ConvBertTokenClassifierPreprocessor
from convbert_keras.models.tokenizer import ConvBertTokenizer
from convbert_keras.models.vocabulary import build_vocabulary

__all__ = [
    "CONVBERT_CONFIGS",
    "ConvBertBackbone",
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
    "build_vocabulary",
    "convbert_config",
]
