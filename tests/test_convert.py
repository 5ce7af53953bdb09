import json
import os
import re
import shutil

import h5py
import keras_hub
import numpy as np
import pytest
import tensorflow as tf
from conftest import FIXTURES
from conftest import load_reference
from safetensors.numpy import load_file
from safetensors.numpy import save_file

from convbert_keras import ConvBertBackbone
from convbert_keras import ConvBertTokenizer
from convbert_keras.cli.convert import main as convert_main
from convbert_keras.convert import convert_checkpoint
from convbert_keras.convert.torch_pickle import load_torch_state_dict
from convbert_keras.convert.weights import tf_layout_to_torch
from convbert_keras.convert.weights import tf_name_to_hf

# The fixtures differ from transformers by about 1e-6 (float32 summation order).
TOLERANCE = 1e-5


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
# port (modeling_tf_convbert) and its TF1 loader (load_tf_weights_in_convbert);
# checked against the files those implementations write in the last section.


def tf_name(pt_name, flavor):
    name = pt_name
    tf1 = flavor == "tf1"
    if tf1:
        name = (
            name.replace("key_conv_attn_layer", "conv_attn_key")
            .replace("conv_kernel_layer", "conv_attn_kernel")
            .replace("conv_out_layer", "conv_attn_point")
        )
    name = name.replace(".depthwise.weight", ".depthwise_kernel").replace(
        ".pointwise.weight", ".pointwise_kernel"
    )
    name = name.replace("LayerNorm.weight", "LayerNorm.gamma").replace(
        "LayerNorm.bias", "LayerNorm.beta"
    )
    if "_embeddings.weight" in name:
        if tf1:
            name = name[: -len(".weight")]
        elif "word_embeddings" not in name:  # the TF2 port's word table is `weight`
            name = name.replace(".weight", ".embeddings")
    else:
        name = re.sub(r"\.weight$", ".kernel", name)
    name = name.replace(".", "/")
    name = re.sub(
        r"encoder/layer/(\d+)", r"encoder/layer_\1" if tf1 else r"encoder/layer_._\1", name
    )
    if tf1:
        return "electra/" + name
    # Keras saves a weight under its full name, which starts with the model's
    # (`tf_conv_bert_model` when it is the first in its process).
    return "tf_conv_bert_model/convbert/" + name + ":0"


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


def tf1_variables(state):
    """The original code's `{name: value}` of the discriminator's weights."""
    # The original names grouped FFN layers (kernel and bias) g_dense.
    grouped = {pt_name.rsplit(".", 1)[0] for pt_name, value in state.items() if value.ndim == 3}
    variables = {}
    for pt_name, value in state.items():
        name = tf_name(pt_name, "tf1")
        if pt_name.rsplit(".", 1)[0] in grouped:
            name = name.replace("/dense/", "/g_dense/")
        variables[name] = tf_value(pt_name, value, "tf1")
    return variables


def write_tf1_checkpoint(prefix, variables):
    with tf.Graph().as_default():
        saver = tf.compat.v1.train.Saver(
            [tf.compat.v1.Variable(value, name=name) for name, value in variables.items()]
        )
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
    extra = {
        "global_step": np.int64(7),
        "electra/encoder/layer_0/attention/self/query/kernel/adam_m": np.zeros((32, 16), "float32"),
        "generator/embeddings_project/kernel": np.zeros((16, 8), "float32"),
    }
    write_tf1_checkpoint(prefix, {**tf1_variables(state), **extra})
    config_path = tmp_path / "convbert_config.json"
    with open(config_path, "w") as f:
        json.dump(fixture_config(fixture_name), f)
    with pytest.warns(UserWarning, match="generator/embeddings_project/kernel"):
        backbone = convert_checkpoint("tf1", str(tmp_path / "ckpt"), config=str(config_path))
    assert max_error(backbone, fixture_name) < TOLERANCE


# The command-line tool's `main` in this process (test_parity_full runs the
# script in a process of its own).


def test_cli_writes_a_loadable_preset_with_tokenizer(tmp_path, capsys):
    output = tmp_path / "preset"
    argv = ["--source", "hf", "--input", os.path.join(FIXTURES, "tiny_grouped")]
    assert convert_main([*argv, "--output", str(output)]) == 0
    assert "wrote" in capsys.readouterr().out
    backbone = ConvBertBackbone.from_preset(str(output))
    assert max_error(backbone, "tiny_grouped") < TOLERANCE
    tokenizer = keras_hub.models.Tokenizer.from_preset(str(output))
    assert isinstance(tokenizer, ConvBertTokenizer)
    # Fixture vocabulary (scripts/make_reference_fixtures.py): the=5,
    # movie=16, film=17, ##s=30, ","=34, "!"=35.
    np.testing.assert_array_equal(
        np.asarray(tokenizer("The movie, Films!")), [5, 16, 34, 17, 30, 35]
    )


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
    with pytest.raises(
        ValueError,
        match=r"missing 1 weight.*encoder\.layer\.1\.attention\.self\.conv_kernel_layer\.bias",
    ):
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
    with pytest.raises(
        ValueError,
        match=r"encoder\.layer\.0\.intermediate\.dense\.weight: checkpoint shape \(64, 32\)",
    ):
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


def test_cli_reports_errors_without_traceback(tmp_path, capsys):
    argv = ["--source", "hf", "--input", str(tmp_path), "--output", str(tmp_path / "out")]
    assert convert_main(argv) == 2
    printed = capsys.readouterr().err
    assert "error:" in printed and "has no config.json" in printed
    assert "Traceback" not in printed


# --- Task heads -------------------------------------------------------------


def _mlm_inputs(inputs):
    positions = np.tile(
        np.arange(inputs["token_ids"].shape[1], dtype="int32"), (inputs["token_ids"].shape[0], 1)
    )
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
    backbone = convert_checkpoint(
        "hf", os.path.join(FIXTURES, "tiny_text_classifier"), task="backbone"
    )
    assert isinstance(backbone, ConvBertBackbone)


# --- Files written by the other implementations ----------------------------
# tests/fixtures/<name>_tf: transformers 4.x's TFConvBertModel loaded the
# PyTorch fixture and saved it (scripts/make_tf_h5_fixture.py).
# tests/fixtures/tf1_original_names.txt: every variable of the original
# code's pretraining graph for the fixture configs
# (scripts/list_tf1_original_variables.py).


def h5_contents(path):
    """`({dataset path: array}, {group: its Keras name attributes})`."""
    datasets, attributes = {}, {}

    def visit(name, item):
        if isinstance(item, h5py.Dataset):
            datasets[name] = item[()]

    with h5py.File(path, "r") as f:
        f.visititems(visit)
        for group in ("/", *f):
            attributes[group] = {
                key: sorted(np.char.decode(np.asarray(f[group].attrs[key], "S")).tolist())
                for key in ("layer_names", "weight_names")
                if key in f[group].attrs and len(f[group].attrs[key])
            }
    return datasets, attributes


def test_transformers_tf_model_h5_matches_transformers(fixture_name, recwarn):
    backbone = convert_checkpoint("hf", os.path.join(FIXTURES, f"{fixture_name}_tf"))
    assert max_error(backbone, fixture_name) < TOLERANCE
    assert not [w for w in recwarn if "does not use" in str(w.message)]


def test_h5_writer_matches_the_file_transformers_writes(tmp_path, fixture_name):
    real, real_attributes = h5_contents(os.path.join(FIXTURES, f"{fixture_name}_tf", "tf_model.h5"))
    write_hf_tf_h5(tmp_path / "tf_model.h5", fixture_state(fixture_name))
    ours, our_attributes = h5_contents(tmp_path / "tf_model.h5")
    assert sorted(ours) == sorted(real)
    for path, value in real.items():
        assert (ours[path].shape, ours[path].dtype) == (value.shape, value.dtype), path
        np.testing.assert_array_equal(ours[path], value, err_msg=path)
    # Groups without weights (transformers' `top_level_model_weights`) name none.
    assert {g: a for g, a in real_attributes.items() if a} == {
        g: a for g, a in our_attributes.items() if a
    }


def original_tf1_variables(section):
    """`{name: (shape, dtype)}` of one section of tf1_original_names.txt."""
    variables, current = {}, None
    with open(os.path.join(FIXTURES, "tf1_original_names.txt")) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("[") and line.endswith("]"):
                current = line[1:-1]
            elif line and not line.startswith("#") and current == section:
                name, shape, dtype = line.split("\t")
                variables[name] = (tuple(int(d) for d in shape.split(",") if d), dtype)
    assert variables, f"no section [{section}]"
    return variables


def _is_optimizer_variable(name):
    # model/optimization.py's slots and the global step.
    return name == "global_step" or name.endswith(("/adam_m", "/adam_v"))


def test_tf1_names_are_those_of_the_original_code(fixture_name):
    original = original_tf1_variables(fixture_name)
    discriminator = {
        name: shape
        for name, (shape, _) in original.items()
        if name.startswith("electra/") and not _is_optimizer_variable(name)
    }
    state = fixture_state(fixture_name)
    # The layout the TF1 tests write is the original's, name for name.
    assert {name: value.shape for name, value in tf1_variables(state).items()} == discriminator
    # The converter takes each onto one PyTorch weight, of its shape.
    converted = {}
    for name, shape in discriminator.items():
        hf_name = tf_name_to_hf(name)
        converted[hf_name] = tf_layout_to_torch(hf_name, np.zeros(shape), "keras").shape
    assert converted == {name: value.shape for name, value in state.items()}


def test_checkpoint_of_the_original_codes_variables_converts(tmp_path, fixture_name):
    original = original_tf1_variables(fixture_name)
    weights = tf1_variables(fixture_state(fixture_name))
    assert set(weights) <= set(original)
    # Generator, heads and optimizer slots as the original saves them, zero.
    variables = {
        name: weights[name] if name in weights else np.zeros(shape, dtype)
        for name, (shape, dtype) in original.items()
    }
    write_tf1_checkpoint(str(tmp_path / "ckpt" / "model.ckpt"), variables)
    config_path = tmp_path / "convbert_config.json"
    with open(config_path, "w") as f:
        json.dump(fixture_config(fixture_name), f)
    outside = [
        name
        for name in original
        if not name.startswith("electra/") and not _is_optimizer_variable(name)
    ]
    with pytest.warns(
        UserWarning, match=f"{len(outside)} variable\\(s\\) outside the discriminator"
    ) as record:
        backbone = convert_checkpoint("tf1", str(tmp_path / "ckpt"), config=str(config_path))
    assert not [w for w in record if "does not use" in str(w.message)]
    assert max_error(backbone, fixture_name) < TOLERANCE
