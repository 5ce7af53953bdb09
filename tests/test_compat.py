"""The private Keras and keras-hub APIs in `convbert_keras._compat`: each
still there and doing what we use it for, and still private (a public
replacement would fail these tests, to be switched to)."""

import importlib

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf
from support import backbone

from convbert_keras import ConvBertMaskedLM
from convbert_keras import _compat
from convbert_keras.training.optimizers import ConvBertAdamW


def _public_names(*modules):
    return {name for module in modules for name in dir(module) if not name.startswith("_")}


def test_punctuation_and_cjk_regex_is_berts_split_and_still_private():
    # An RE2 pattern, for tf.strings: ASCII symbols count as punctuation
    # (as in BERT), and so do Unicode P* characters and CJK ideographs.
    inside = list("!,.?$~^\u3001\u00bf\u2014\u4e2d\u3400\U00020000")
    outside = list("aZ\u00e9 1\u0301\u3042\u00a0")
    matched = tf.strings.regex_full_match(inside + outside, _compat.PUNCTUATION_AND_CJK_REGEX)
    assert matched.numpy().tolist() == [True] * len(inside) + [False] * len(outside)
    assert "PUNCTUATION_AND_CJK_REGEX" not in _public_names(keras_hub.tokenizers, keras_hub)


def test_loss_scaling_divides_by_the_replicas_and_is_still_private():
    loss = keras.ops.convert_to_tensor(6.0)
    # One replica (no strategy): neither changes the loss.
    assert float(_compat.scale_loss_for_distribution(loss)) == 6.0
    assert float(_compat.unscale_loss_for_distribution(loss)) == 6.0
    public = _public_names(keras.losses, keras.utils, keras.distribution)
    assert not {"scale_loss_for_distribution", "unscale_loss_for_distribution"} & public


def test_masked_lm_head_parts_are_all_of_its_own_weights():
    task = ConvBertMaskedLM(backbone())
    head = task.masked_lm_head
    dense, norm, bias = _compat.masked_lm_head_parts(head)
    assert isinstance(dense, keras.layers.Dense)
    assert isinstance(norm, keras.layers.LayerNormalization)
    own = {w.path for w in head.weights} - {head.token_embedding.embeddings.path}
    assert own == {w.path for w in (*dense.weights, *norm.weights, bias)}


def test_loss_tracker_is_the_loss_log():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((4, 2), "float32"), np.zeros((4, 1), "float32")
    logs = model.train_on_batch(x, y, return_dict=True)
    assert float(_compat.loss_tracker(model).result()) == pytest.approx(logs["loss"])


def test_variable_index_finds_each_variable():
    variables = [keras.Variable(np.zeros(3), name=f"v{i}") for i in range(3)]
    optimizer = ConvBertAdamW(1e-3)
    optimizer.build(variables)
    assert [_compat.variable_index(optimizer, v) for v in variables] == [0, 1, 2]


@pytest.mark.parametrize("target", sorted(_compat.OVERRIDDEN))
def test_overridden_private_methods_still_exist_where_we_override_them(target):
    module, name, method = target
    keras_class = getattr(importlib.import_module(module), name)
    assert method in vars(keras_class)
    ours_module, ours_name = _compat.OVERRIDDEN[target].rsplit(".", 1)
    ours = getattr(importlib.import_module(ours_module), ours_name)
    assert issubclass(ours, keras_class)
    assert getattr(ours, method).__module__.startswith("convbert_keras.")


def test_preset_files_are_found_and_read_as_keras_hub_does(tmp_path):
    backbone(num_layers=1).save_to_preset(str(tmp_path))
    assert _compat.preset_file_exists(str(tmp_path), "config.json")
    assert not _compat.preset_file_exists(str(tmp_path), "preprocessor.json")
    config = _compat.preset_json(str(tmp_path), "config.json")
    assert config["config"]["num_layers"] == 1
    public = _public_names(keras_hub.utils, keras_hub)
    assert not {"check_file_exists", "load_json"} & public


def test_preprocessing_function_converts_as_keras_hub_preprocessors_do():
    import grain

    class Lengths(keras_hub.models.Preprocessor):
        @_compat.preprocessing_function
        def call(self, x, y=None, sample_weight=None):
            return keras.utils.pack_x_y_sample_weight(tf.strings.length(x), y, sample_weight)

    layer = Lengths()
    # A Python list in, a tensor of the backend out.
    direct = layer(["ab", "abc"])
    assert keras.ops.is_tensor(direct) and keras.ops.convert_to_numpy(direct).tolist() == [2, 3]
    # Inside a Grain pipeline: NumPy out, labels passed through.
    (element,) = list(grain.MapDataset.source([(["ab", "abc"], [1, 0])]).map(lambda e: layer(*e)))
    assert isinstance(element[0], np.ndarray) and element[0].tolist() == [2, 3]
    assert "preprocessing_function" not in _public_names(keras_hub.utils, keras_hub)


def test_nested_layers_reach_every_depth_and_are_still_private():
    model = backbone(num_layers=1)
    layers = _compat.nested_layers(model)
    attention = model.transformer_layers[0].attention
    assert layers[0] is model
    assert attention in layers and attention.span_dynamic_conv in layers
    assert "flatten_layers" not in _public_names(keras.Model, keras.layers.Layer)


def test_batched_input_dataset_batches_in_memory_inputs_as_keras_hub_does(monkeypatch):
    # keras-hub sees no grain in the suite (tests/startup), so it batches
    # with tf.data.
    batches = _compat.batched_input_dataset(["a", "b", "c"], np.array([0, 1, 0]), None, 2)
    assert isinstance(batches, tf.data.Dataset) and int(batches.cardinality()) == 2
    x, y = next(iter(batches))
    assert x.numpy().tolist() == [b"a", b"b"] and y.numpy().tolist() == [0, 1]
    given = tf.data.Dataset.range(3).batch(2)
    assert _compat.batched_input_dataset(given, None, None, None) is given
    # With grain visible to keras-hub, keras-hub batches with grain; ours
    # still with tf.data, so a task's batches do not depend on the install.
    import grain
    from keras_hub.src.utils import pipeline_model

    monkeypatch.setattr(pipeline_model, "grain", grain)
    keras_hubs = pipeline_model._convert_inputs_to_dataset(["a", "b", "c"], None, None, 2)
    assert isinstance(keras_hubs, grain.MapDataset)
    ours = _compat.batched_input_dataset(["a", "b", "c"], np.array([0, 1, 0]), None, 2)
    assert isinstance(ours, tf.data.Dataset)
    assert [x.numpy().tolist() for x, _ in ours] == [[b"a", b"b"], [b"c"]]
    assert "convert_inputs_to_dataset" not in _public_names(keras_hub.utils, keras_hub)
