"""The private Keras and keras-hub APIs this package relies on, in one place.

Written against keras 3.15 and keras-hub 0.32 (the versions in
`constraints.txt`); none has a public equivalent there. The private methods
this package overrides are listed in `OVERRIDDEN`. `tests/test_compat.py`
fails when any of them disappears, and when a public replacement appears.
"""

# How Keras scales a replica's loss under a strategy (divided by the number of
# replicas) and undoes it for the loss metric; `Trainer.compute_loss` applies
# them, and a custom `compute_loss` must do the same.
from keras.src.losses.loss import scale_loss_for_distribution
from keras.src.losses.loss import unscale_loss_for_distribution

# BERT's punctuation and CJK character classes as one regex (keras-hub's
# word-piece split uses it; it is not exported).
from keras_hub.src.tokenizers.word_piece_tokenizer import PUNCTUATION_AND_CJK_REGEX

# How keras-hub's `fit`, `evaluate` and `predict` batch in-memory inputs:
# with grain where grain is installed, with tf.data otherwise; a dataset
# passed in is checked and kept (see `batched_input_dataset`).
from keras_hub.src.utils import pipeline_model as _pipeline_model

# Whether a keras-hub preset (a folder, or a Kaggle or Hub handle) holds a
# file, and a JSON file of it read: how `from_preset` tells what a preset
# saved.
from keras_hub.src.utils.preset_utils import check_file_exists as preset_file_exists
from keras_hub.src.utils.preset_utils import load_json as preset_json

# keras-hub's wrapper of a preprocessor's `call`, on all of its own: raw
# inputs (lists, strings, NumPy) in as tensors, outputs out as the backend's
# tensors, or as NumPy arrays and Python lists inside a Grain pipeline.
from keras_hub.src.utils.tensor_utils import preprocessing_function

__all__ = [
    "OVERRIDDEN",
    "PUNCTUATION_AND_CJK_REGEX",
    "batched_input_dataset",
    "loss_tracker",
    "masked_lm_head_parts",
    "nested_layers",
    "preset_file_exists",
    "preset_json",
    "preprocessing_function",
    "scale_loss_for_distribution",
    "unscale_loss_for_distribution",
    "variable_index",
]

# Private methods of Keras classes that this package overrides: (module,
# class, method) that defines them, and one of our classes that should reach
# our override. A rename in Keras would leave the override unused, silently.
OVERRIDDEN = {
    ("keras.src.backend.tensorflow.trainer", "TensorFlowTrainer", "_maybe_symbolic_build"): (
        "convbert_keras.models.text_classifier.ConvBertTextClassifier"
    ),
    ("keras.src.optimizers.base_optimizer", "BaseOptimizer", "_clip_gradients"): (
        "convbert_keras.training.optimizers.ConvBertAdamW"
    ),
    ("keras.src.backend.tensorflow.optimizer", "TFOptimizer", "_all_reduce_sum_gradients"): (
        "convbert_keras.training.optimizers.ConvBertAdamW"
    ),
}


def batched_input_dataset(x, y=None, sample_weight=None, batch_size=None):
    """In-memory inputs batched with `tf.data`, as keras-hub batches them
    where grain is not installed; a dataset passed in is checked and kept,
    as keras-hub does. The tasks' preprocessing is a `tf.data` pipeline, so
    their batches, their order and their results do not depend on whether
    grain is installed (keras-hub[grain], or keras-hub's test harness)."""
    import keras

    if _pipeline_model._is_tf_dataset(x) or _pipeline_model._is_grain_dataset(x):
        return _pipeline_model._convert_inputs_to_dataset(x, y, sample_weight, batch_size)
    inputs = keras.utils.pack_x_y_sample_weight(x, y, sample_weight)
    return _pipeline_model._convert_inputs_to_tf_dataset(inputs, batch_size)


def nested_layers(layer):
    """`layer` and every layer inside it, at any depth (what keras-hub
    leaves out to save a task's own weights)."""
    return list(layer._flatten_layers())


def masked_lm_head_parts(head):
    """A keras-hub `MaskedLMHead`'s transform Dense, its LayerNorm and its
    output bias, which it keeps as private attributes."""
    return head._intermediate_dense, head._intermediate_layer_norm, head._bias


def loss_tracker(model):
    """The `Mean` metric behind a compiled Keras model's `loss` log."""
    return model._loss_tracker


def variable_index(optimizer, variable):
    """The position of `variable` in `optimizer`'s variable list (what its
    per-variable slots are indexed by)."""
    return optimizer._get_variable_index(variable)
