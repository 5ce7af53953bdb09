import json
import os
import re
import shutil
import subprocess
import sys

import h5py
import keras_hub
import numpy as np
import pytest
import tensorflow as tf
from safetensors.numpy import load_file
from safetensors.numpy import save_file

from conftest import FIXTURES
from conftest import load_reference
from convbert_keras import ConvBertBackbone
from convbert_keras import ConvBertTokenizer
from convbert_keras.convert import convert_checkpoint
from convbert_keras.convert.torch_pickle import load_torch_state_dict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOLERANCE = 1e-4


def fixture_state(name):
    return load_file(os.path.join(FIXTURES, name, "model.safetensors"))


def fixture_config(name):
    with open(os.path.join(FIXTURES, name, "config.json")) as f:
        return json.load(f)


def max_error(backbone, name):
    inputs, expected = load_reference(name)
    got = backbone.predict_on_batch(inputs)["sequence_output"]
    return float(np.abs(got - expected).max())


def hf_dir(tmp_path, name, config=None):
    directory = tmp_path / "hf"
    directory.mkdir()
    with open(directory / "config.json", "w") as f:
        json.dump(config or fixture_config(name), f)
    return directory


# --- TensorFlow layouts, written from the conventions of transformers' TF2
# port (modeling_tf_convbert) and its TF1 loader (load_tf_weights_in_convbert).

def tf_name(pt_name, flavor):
    name = pt_name
    tf1 = flavor == "tf1"
    if tf1:
        name = (name.replace("key_conv_attn_layer", "conv_attn_key")
                .replace("conv_kernel_layer", "conv_attn_kernel")
                .replace("conv_out_layer", "conv_attn_point"))
    name = name.replace(".depthwise.weight", ".depthwise_kernel").replace(".pointwise.weight", ".pointwise_kernel")
    name = name.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
    if "_embeddings.weight" in name:
        if tf1:
            name = name[: -len(".weight")]
        elif "word_embeddings" not in name:
            name = name.replace(".weight", ".embeddings")
    name = re.sub(r"\.weight$", ".kernel", name)
    name = name.replace(".", "/")
    name = re.sub(r"encoder/layer/(\d+)", r"encoder/layer_\1" if tf1 else r"encoder/layer_._\1", name)
    return ("electra/" + name) if tf1 else ("convbert/" + name + ":0")


def tf_value(pt_name, value, flavor):
    if pt_name.endswith("depthwise.weight"):
        return value.transpose(2, 0, 1)
    if pt_name.endswith("pointwise.weight"):
        return value.transpose(2, 1, 0)
    if pt_name.endswith("key_conv_attn_layer.bias"):
        return value.reshape(-1)
    if value.ndim == 3:
        return value if flavor == "tf1" else value.transpose(2, 1, 0)
    if value.ndim == 2 and "_embeddings." not in pt_name:
        return value.T
    return value


def write_hf_tf_h5(path, state):
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [b"convbert"]
        group = f.create_group("convbert")
        names = []
        for pt_name, value in state.items():
            name = tf_name(pt_name, "hf_tf")
            group.create_dataset(name, data=tf_value(pt_name, value, "hf_tf"))
            names.append(name.encode())
        group.attrs["weight_names"] = names


def write_tf1_checkpoint(prefix, state, extra=()):
    with tf.Graph().as_default():
        variables = []
        for pt_name, value in state.items():
            name = tf_name(pt_name, "tf1")
            if value.ndim == 3:  # the original names grouped FFN layers g_dense
                name = name.replace("/dense/", "/g_dense/")
            variables.append(tf.compat.v1.Variable(tf_value(pt_name, value, "tf1"), name=name))
        for name, value in extra:
            variables.append(tf.compat.v1.Variable(value, name=name))
        saver = tf.compat.v1.train.Saver(variables)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, prefix)


# --- Parity -------------------------------------------------------------

def test_safetensors_directory_matches_transformers(fixture_name):
    backbone = convert_checkpoint("hf", os.path.join(FIXTURES, fixture_name))
    assert max_error(backbone, fixture_name) < TOLERANCE


@pytest.mark.parametrize("fmt", ["bin", "h5", "prefixed", "sharded"])
def test_other_hf_formats_match_transformers(tmp_path, fixture_name, fmt):
    state = fixture_state(fixture_name)
    directory = hf_dir(tmp_path, fixture_name)
    if fmt == "bin":
        shutil.copy(os.path.join(FIXTURES, fixture_name, "pytorch_model.bin"), directory)
    elif fmt == "h5":
        write_hf_tf_h5(directory / "tf_model.h5", state)
    elif fmt == "prefixed":
        # A task model (ConvBertForSequenceClassification) saves its encoder
        # under `convbert.` beside its head.
        prefixed = {f"convbert.{k}": v for k, v in state.items()}
        prefixed["classifier.out_proj.weight"] = np.zeros((2, 32), "float32")
        save_file(prefixed, str(directory / "model.safetensors"))
    else:
        names = sorted(state)
        half = len(names) // 2
        weight_map = {}
        for i, part in enumerate((names[:half], names[half:])):
            shard = f"model-0000{i + 1}-of-00002.safetensors"
            save_file({k: state[k] for k in part}, str(directory / shard))
            weight_map.update({k: shard for k in part})
        with open(directory / "model.safetensors.index.json", "w") as f:
            json.dump({"metadata": {}, "weight_map": weight_map}, f)
    if fmt == "prefixed":
        with pytest.warns(UserWarning, match="classifier.out_proj.weight"):
            backbone = convert_checkpoint("hf", directory)
    else:
        backbone = convert_checkpoint("hf", directory)
    assert max_error(backbone, fixture_name) < TOLERANCE


def test_torch_free_bin_reader_equals_safetensors(fixture_name):
    from_bin = load_torch_state_dict(os.path.join(FIXTURES, fixture_name, "pytorch_model.bin"))
    from_safetensors = fixture_state(fixture_name)
    assert set(from_bin) >= set(from_safetensors)
    for name, value in from_safetensors.items():
        np.testing.assert_array_equal(from_bin[name], value)


def test_tf1_checkpoint_matches_transformers(tmp_path, fixture_name):
    state = fixture_state(fixture_name)
    prefix = str(tmp_path / "ckpt" / "model.ckpt")
    extra = [
        ("global_step", np.int64(7)),
        ("electra/encoder/layer_0/attention/self/query/kernel/adam_m", np.zeros((32, 16), "float32")),
        ("generator/embeddings_project/kernel", np.zeros((16, 8), "float32")),
    ]
    write_tf1_checkpoint(prefix, state, extra)
    config_path = tmp_path / "convbert_config.json"
    with open(config_path, "w") as f:
        json.dump(fixture_config(fixture_name), f)
    with pytest.warns(UserWarning, match="generator/embeddings_project/kernel"):
        backbone = convert_checkpoint("tf1", str(tmp_path / "ckpt"), config=str(config_path))
    assert max_error(backbone, fixture_name) < TOLERANCE


def test_cli_writes_a_loadable_preset_with_tokenizer(tmp_path):
    output = tmp_path / "preset"
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "scripts", "convert_checkpoint.py"),
         "--source", "hf", "--input", os.path.join(FIXTURES, "tiny_grouped"),
         "--output", str(output)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout
    backbone = ConvBertBackbone.from_preset(str(output))
    assert max_error(backbone, "tiny_grouped") < TOLERANCE
    tokenizer = keras_hub.models.Tokenizer.from_preset(str(output))
    assert isinstance(tokenizer, ConvBertTokenizer)
    # Fixture vocabulary (scripts/make_reference_fixtures.py): the=5,
    # movie=16, film=17, ##s=30, ","=34, "!"=35.
    np.testing.assert_array_equal(np.asarray(tokenizer("The movie, Films!")), [5, 16, 34, 17, 30, 35])


# --- Bad input ------------------------------------------------------------

def test_head_ratio_other_than_two_is_refused(tmp_path):
    config = dict(fixture_config("tiny"), head_ratio=4)
    directory = hf_dir(tmp_path, "tiny", config)
    shutil.copy(os.path.join(FIXTURES, "tiny", "model.safetensors"), directory)
    with pytest.raises(ValueError, match="head_ratio is 4, but only head_ratio 2"):
        convert_checkpoint("hf", directory)


def test_other_model_type_is_refused(tmp_path):
    directory = hf_dir(tmp_path, "tiny", dict(fixture_config("tiny"), model_type="bert"))
    with pytest.raises(ValueError, match="model_type is 'bert'"):
        convert_checkpoint("hf", directory)


def test_missing_weight_is_named(tmp_path):
    state = fixture_state("tiny")
    del state["encoder.layer.1.attention.self.conv_kernel_layer.bias"]
    directory = hf_dir(tmp_path, "tiny")
    save_file(state, str(directory / "model.safetensors"))
    with pytest.raises(ValueError, match=r"missing 1 weight.*encoder\.layer\.1\.attention\.self\.conv_kernel_layer\.bias"):
        convert_checkpoint("hf", directory)


def test_extra_weight_is_named_in_a_warning(tmp_path):
    state = fixture_state("tiny")
    state["discriminator_predictions.dense.weight"] = np.zeros((32, 32), "float32")
    directory = hf_dir(tmp_path, "tiny")
    save_file(state, str(directory / "model.safetensors"))
    with pytest.warns(UserWarning, match="discriminator_predictions.dense.weight"):
        backbone = convert_checkpoint("hf", directory)
    assert max_error(backbone, "tiny") < TOLERANCE


def test_wrong_shape_is_named(tmp_path):
    config = dict(fixture_config("tiny"), intermediate_size=128)
    directory = hf_dir(tmp_path, "tiny", config)
    shutil.copy(os.path.join(FIXTURES, "tiny", "model.safetensors"), directory)
    with pytest.raises(ValueError, match=r"encoder\.layer\.0\.intermediate\.dense\.weight: checkpoint shape \(64, 32\)"):
        convert_checkpoint("hf", directory)


@pytest.mark.parametrize("filename", ["model.safetensors", "pytorch_model.bin", "tf_model.h5"])
def test_unreadable_weights_file_is_named(tmp_path, filename):
    directory = hf_dir(tmp_path, "tiny")
    (directory / filename).write_bytes(b"this is not a checkpoint")
    with pytest.raises(ValueError, match=f"Could not read weights from .*{re.escape(filename)}"):
        convert_checkpoint("hf", directory)


def test_missing_files_are_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        convert_checkpoint("hf", tmp_path)
    directory = hf_dir(tmp_path, "tiny")
    with pytest.raises(FileNotFoundError, match="No weights in"):
        convert_checkpoint("hf", directory)
    with pytest.raises(FileNotFoundError, match="No TensorFlow checkpoint"):
        convert_checkpoint("tf1", str(tmp_path), size="small")


def test_tf1_needs_exactly_one_config_source(tmp_path):
    with pytest.raises(ValueError, match="exactly one of `config`"):
        convert_checkpoint("tf1", str(tmp_path))
    with pytest.raises(ValueError, match="Unknown source 'onnx'"):
        convert_checkpoint("onnx", str(tmp_path))


def test_vocabulary_that_does_not_match_is_refused(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a"]) + "\n")
    with pytest.raises(ValueError, match="has 6 entries but the model embeds 64 ids"):
        convert_checkpoint(
            "hf", os.path.join(FIXTURES, "tiny"), str(tmp_path / "out"), vocabulary=str(vocab)
        )


def test_cli_reports_errors_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "scripts", "convert_checkpoint.py"),
         "--source", "hf", "--input", str(tmp_path), "--output", str(tmp_path / "out")],
        capture_output=True, text=True,
    )
    assert result.returncode == 2
    assert "error:" in result.stderr and "has no config.json" in result.stderr
    assert "Traceback" not in result.stderr


# --- Task heads -------------------------------------------------------------

def _mlm_inputs(inputs):
    positions = np.tile(np.arange(inputs["token_ids"].shape[1], dtype="int32"), (inputs["token_ids"].shape[0], 1))
    return dict(inputs, mask_positions=positions)


@pytest.mark.parametrize(
    "name, task_cls",
    [
        ("tiny_text_classifier", keras_hub.models.TextClassifier),
        ("tiny_token_classifier", None),
        ("tiny_masked_lm", keras_hub.models.MaskedLM),
        ("tiny_question_answerer", None),
    ],
)
def test_task_heads_match_transformers(tmp_path, name, task_cls):
    from convbert_keras import ConvBertMaskedLM

    data = np.load(os.path.join(FIXTURES, name, "reference.npz"))
    inputs = {k: data[k] for k in ("token_ids", "segment_ids", "padding_mask")}
    model = convert_checkpoint("hf", os.path.join(FIXTURES, name), str(tmp_path / "preset"))
    if isinstance(model, ConvBertMaskedLM):
        inputs = _mlm_inputs(inputs)
    # Called directly: predict() would send token ids through the preprocessor.
    got = np.asarray(model(inputs))
    assert float(np.abs(got - data["logits"]).max()) < TOLERANCE
    if task_cls is not None:
        loaded = task_cls.from_preset(str(tmp_path / "preset"))
        assert type(loaded) is type(model)
        np.testing.assert_allclose(np.asarray(loaded(inputs)), got, atol=1e-6)


def test_task_checkpoint_converts_as_backbone_alone():
    backbone = convert_checkpoint("hf", os.path.join(FIXTURES, "tiny_text_classifier"), task="backbone")
    assert isinstance(backbone, ConvBertBackbone)
