"""ConvBERT for Keras 3 and TensorFlow."""

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings

# First, before TensorFlow loads: the tools' filter for native log lines.
from convbert_keras import _start_up  # noqa: F401
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

# Modules that lived at the package root before the library was laid out by
# role. Their old paths still import, as the same module objects (tests and
# users patch module attributes), with a DeprecationWarning.
_MOVED = {
    **{
        name: f"convbert_keras.training.{name}"
        for name in ("finetuning", "optimizers", "pretraining", "recipes", "runs")
    },
    **{
        name: f"convbert_keras.lab.{name}"
        for name in (
            "baselines",
            "benchmark",
            "benchmark_worker",
            "comparison",
            "demo",
            "reference",
            "serving_benchmark",
            "strategy_benchmark",
        )
    },
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports `convbert_keras.<old name>` as the module it moved to."""

    def __init__(self):
        # Each moved module's own spec, by its new name: the import system
        # overwrites it with the old name's between the two calls below.
        self._specs = {}

    def find_spec(self, fullname, path=None, target=None):
        prefix, _, name = fullname.rpartition(".")
        if prefix != __name__ or name not in _MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec):
        new = _MOVED[spec.name.rpartition(".")[2]]
        # warnings skips the import system's frames: level 2 is the import.
        warnings.warn(
            f"{spec.name} moved to {new}; import it from there.",
            DeprecationWarning,
            stacklevel=2,
        )
        module = importlib.import_module(new)
        self._specs.setdefault(new, module.__spec__)
        return module

    def exec_module(self, module):
        module.__spec__ = self._specs[module.__name__]


if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModules())
