"""Inputs that must not be read silently or unsafely: crafted `torch.save`
files, masked LM checkpoints whose decoder is not tied to the word
embeddings, and corpora that are not valid UTF-8."""

import codecs
import json
import os
import pickle
import random
import shutil
import struct
import warnings
import zipfile

import numpy as np
import pytest
from conftest import FIXTURES

from convbert_keras.convert import convert_checkpoint
from convbert_keras.convert.hf import read_hf_weights
from convbert_keras.convert.torch_pickle import load_torch_state_dict
from convbert_keras.data.corpus import InvalidUtf8
from convbert_keras.data.corpus import count_invalid_utf8
from convbert_keras.data.corpus import describe_text_files

TOLERANCE = 1e-4

# --- torch.save files, written opcode by opcode -----------------------------
# Protocol 2, as torch writes it; no torch needed to build a crafted file.


class _Global:
    """`module.name`, as pickle's GLOBAL opcode names it."""

    def __init__(self, module, name):
        self.module, self.name = module, name


class _Call:
    """`function(*args)`, pickle's REDUCE."""

    def __init__(self, function, *args):
        self.function, self.args = function, args


class _Storage:
    """A persistent id: storage record `key` of `numel` elements."""

    def __init__(self, key, numel, storage_type="FloatStorage"):
        self.pid = ("storage", _Global("torch", storage_type), key, "cpu", numel)


def _opcodes(value):
    if isinstance(value, _Global):
        return b"c" + f"{value.module}\n{value.name}\n".encode()
    if isinstance(value, _Call):
        return _opcodes(value.function) + _opcodes(value.args) + b"R"
    if isinstance(value, _Storage):
        return _opcodes(value.pid) + b"Q"
    if isinstance(value, bool):
        return b"\x88" if value else b"\x89"
    if isinstance(value, int) and -(2**31) <= value < 2**31:
        return b"J" + struct.pack("<i", value)
    if isinstance(value, int):
        data = value.to_bytes(value.bit_length() // 8 + 1, "little", signed=True)
        return b"\x8a" + bytes([len(data)]) + data
    if isinstance(value, float):
        return b"G" + struct.pack(">d", value)
    if isinstance(value, str):
        data = value.encode()
        return b"X" + struct.pack("<I", len(data)) + data
    if isinstance(value, tuple):
        return b"(" + b"".join(map(_opcodes, value)) + b"t"
    if isinstance(value, dict):
        return b"}(" + b"".join(_opcodes(k) + _opcodes(v) for k, v in value.items()) + b"u"
    raise TypeError(type(value))


def _tensor(storage, offset, size, stride):
    """What torch pickles for a tensor: `_rebuild_tensor_v2(storage, offset,
    size, stride, requires_grad, backward_hooks)`."""
    hooks = _Call(_Global("collections", "OrderedDict"))
    return _Call(
        _Global("torch._utils", "_rebuild_tensor_v2"), storage, offset, size, stride, False, hooks
    )


def _write_bin(path, state, records):
    """A zip in torch's layout: `archive/data.pkl` and `archive/data/<key>`."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02" + _opcodes(state) + b".")
        for key, data in records.items():
            archive.writestr(f"archive/data/{key}", data)
    return path


STORAGE = np.arange(12, dtype="<f4")  # a 3 x 4 matrix's storage


def _write_view(path, offset, size, stride, numel=12, data=None):
    data = STORAGE.tobytes() if data is None else data
    return _write_bin(path, {"w": _tensor(_Storage("0", numel), offset, size, stride)}, {"0": data})


def test_hand_built_file_reads_its_views(tmp_path):
    storage = _Storage("0", 12)
    path = _write_bin(
        tmp_path / "ok.bin",
        {
            "matrix": _tensor(storage, 0, (3, 4), (4, 1)),
            "transposed": _tensor(storage, 0, (4, 3), (1, 4)),
            "corner": _tensor(storage, 6, (2, 2), (4, 1)),
            "last": _tensor(storage, 11, (), ()),
        },
        {"0": STORAGE.tobytes()},
    )
    state = load_torch_state_dict(path)
    matrix = STORAGE.reshape(3, 4)
    np.testing.assert_array_equal(state["matrix"], matrix)
    np.testing.assert_array_equal(state["transposed"], matrix.T)
    np.testing.assert_array_equal(state["corner"], matrix[1:, 2:])
    assert state["last"].shape == () and state["last"] == 11


@pytest.mark.parametrize(
    "offset, size, stride, needed",
    [
        (0, (3, 4), (5, 1), 14),  # a stride past the storage
        (10, (3,), (1,), 13),  # an offset past it
        (0, (2, 2), (1, 11), 13),  # 4 elements, one of them past the end
        (12, (), (), 13),  # a scalar just past the end
        (2**40, (1,), (1,), 2**40 + 1),  # far past: as_strided would read memory
    ],
)
def test_view_past_its_storage_is_refused(tmp_path, offset, size, stride, needed):
    path = _write_view(tmp_path / "bad.bin", offset, size, stride)
    with pytest.raises(ValueError) as error:
        load_torch_state_dict(path)
    assert str(error.value) == (
        f"A tensor view reads past its storage: offset {offset}, size {size}, "
        f"stride {stride} needs {needed} elements, the storage has 12; the "
        "file is corrupt or crafted."
    )


@pytest.mark.parametrize(
    "offset, size, stride",
    [
        (0, (3, 4), (4, -1)),  # a negative stride
        (-1, (3,), (1,)),  # a negative offset
        (0, (3, 4), (4,)),  # fewer strides than sizes
        (0, (3,), (1, 1)),  # more
        (0, (3, -4), (4, 1)),  # a negative size
        (0, (3.0,), (1,)),  # not an integer
        (0, (True,), (1,)),
    ],
)
def test_malformed_view_is_refused(tmp_path, offset, size, stride):
    path = _write_view(tmp_path / "bad.bin", offset, size, stride)
    with pytest.raises(
        ValueError, match=r"^Malformed tensor view: .*The file is corrupt or crafted\.$"
    ):
        load_torch_state_dict(path)


def test_empty_view_reads_nothing(tmp_path):
    # torch keeps any offset for an empty tensor; nothing is read.
    state = load_torch_state_dict(_write_view(tmp_path / "empty.bin", 40, (0, 4), (4, 1)))
    assert state["w"].shape == (0, 4) and state["w"].dtype == np.float32


def test_storage_of_the_wrong_length_is_refused(tmp_path):
    path = _write_view(tmp_path / "short.bin", 0, (3,), (1,), data=STORAGE[:10].tobytes())
    with pytest.raises(
        ValueError,
        match=(
            r"^Storage archive/data/0 holds 40 bytes, but its record claims 12 "
            r"torch\.FloatStorage elements \(48 bytes\); the file is corrupt or crafted\.$"
        ),
    ):
        load_torch_state_dict(path)


def test_missing_storage_record_is_named(tmp_path):
    path = _write_bin(
        tmp_path / "lacking.bin", {"w": _tensor(_Storage("7", 12), 0, (3,), (1,))}, {}
    )
    with pytest.raises(
        ValueError, match="refers to storage archive/data/7, which the archive lacks"
    ):
        load_torch_state_dict(path)


@pytest.mark.parametrize("function", [_Global("os", "system"), _Global("builtins", "eval")])
def test_globals_other_than_tensors_are_refused(tmp_path, function):
    marker = tmp_path / "ran"
    command = f"open({str(marker)!r}, 'w')" if function.name == "eval" else f"touch {marker}"
    path = _write_bin(tmp_path / "evil.bin", {"w": _Call(function, command)}, {})
    with pytest.raises(
        pickle.UnpicklingError,
        match=(rf"contains `{function.module}\.{function.name}`, which is not a plain tensor"),
    ):
        load_torch_state_dict(path)
    assert not marker.exists()
    # Through the Hugging Face reader: a ValueError naming the file.
    directory = tmp_path / "hf"
    directory.mkdir()
    shutil.copy(path, directory / "pytorch_model.bin")
    with pytest.raises(
        ValueError, match=r"Could not read weights from .*pytorch_model\.bin: UnpicklingError"
    ):
        read_hf_weights(str(directory))
    assert not marker.exists()


def test_crafted_view_is_named_by_the_hf_reader(tmp_path):
    directory = tmp_path / "hf"
    directory.mkdir()
    _write_view(directory / "pytorch_model.bin", 0, (3, 4), (5, 1))
    with pytest.raises(
        ValueError,
        match=(
            r"Could not read weights from .*pytorch_model\.bin: "
            r"A tensor view reads past its storage"
        ),
    ):
        read_hf_weights(str(directory))


@pytest.mark.reference
def test_torch_save_round_trips_exactly(tmp_path):
    import torch

    matrix = torch.randn(5, 6, generator=torch.Generator().manual_seed(0))
    tensors = {
        "matrix": matrix,
        "transposed": matrix.T,  # non-contiguous, the same storage
        "slice": matrix[1:4, 2:],  # an offset into it
        "every_other": matrix[::2, ::3],
        "row": matrix[4],
        "scalar": matrix[2, 3],
        "broadcast": torch.arange(3.0).expand(4, 3),  # stride 0
        "empty": torch.zeros(0, 4),
        "half": matrix.half()[:, 1:],
        "bfloat16": matrix.bfloat16().T,
        "long": torch.arange(10)[3:],
        "int": torch.arange(8, dtype=torch.int32).reshape(2, 4).T,
        "bool": torch.arange(6).reshape(2, 3) % 2 == 0,
        "uint8": torch.arange(7, dtype=torch.uint8),
    }
    path = tmp_path / "model.bin"
    torch.save(tensors, path)
    with zipfile.ZipFile(path) as archive:
        records = [n for n in archive.namelist() if "/data/" in n and "/.data/" not in n]
    # The views of `matrix` share its one stored storage.
    distinct = {t.untyped_storage().data_ptr() for t in tensors.values()}
    assert len(records) == len(distinct) < len(tensors)
    state = load_torch_state_dict(path)
    assert sorted(state) == sorted(tensors)
    for name, tensor in tensors.items():
        expected = tensor.float().numpy() if tensor.dtype == torch.bfloat16 else tensor.numpy()
        got = state[name].astype(np.float32) if tensor.dtype == torch.bfloat16 else state[name]
        assert got.dtype == expected.dtype, name
        np.testing.assert_array_equal(got, expected, err_msg=name)


# --- Masked LM heads whose decoder is not tied ------------------------------

MASKED_LM = os.path.join(FIXTURES, "tiny_masked_lm")


def _masked_lm_inputs():
    data = np.load(os.path.join(MASKED_LM, "reference.npz"))
    inputs = {k: data[k] for k in ("token_ids", "segment_ids", "padding_mask")}
    batch, length = inputs["token_ids"].shape
    positions = np.tile(np.arange(length, dtype="int32"), (batch, 1))
    return dict(inputs, mask_positions=positions), data["logits"]


def _untied_fixture(tmp_path, tie_word_embeddings):
    """The tiny masked LM with a decoder of its own (the word embeddings
    plus noise), and `tie_word_embeddings` in its config.json."""
    from safetensors.numpy import load_file
    from safetensors.numpy import save_file

    directory = tmp_path / "untied"
    shutil.copytree(MASKED_LM, directory)
    state = load_file(os.path.join(MASKED_LM, "model.safetensors"))
    embeddings = state["convbert.embeddings.word_embeddings.weight"]
    decoder = embeddings + np.random.default_rng(0).normal(0, 0.05, embeddings.shape).astype(
        "float32"
    )
    save_file(
        dict(state, **{"generator_lm_head.weight": decoder}), str(directory / "model.safetensors")
    )
    with open(directory / "config.json") as f:
        config = json.load(f)
    with open(directory / "config.json", "w") as f:
        json.dump(dict(config, tie_word_embeddings=tie_word_embeddings), f)
    return directory, decoder


def test_tied_masked_lm_converts_as_before():
    model = convert_checkpoint("hf", MASKED_LM)
    inputs, expected = _masked_lm_inputs()
    assert model.tie_word_embeddings is True
    assert model.masked_lm_head.token_embedding is model.backbone.token_embedding
    assert float(np.abs(np.asarray(model(inputs)) - expected).max()) < TOLERANCE


def test_untied_masked_lm_converts_with_its_own_decoder(tmp_path):
    import keras_hub

    directory, decoder = _untied_fixture(tmp_path, tie_word_embeddings=False)
    model = convert_checkpoint("hf", str(directory), str(tmp_path / "preset"))
    assert model.tie_word_embeddings is False
    head_decoder = model.masked_lm_head.token_embedding
    assert head_decoder is not model.backbone.token_embedding
    np.testing.assert_array_equal(np.asarray(head_decoder.embeddings), decoder)
    inputs, tied_logits = _masked_lm_inputs()
    logits = np.asarray(model(inputs))
    # The decoder is used: the logits are not those of the tied model.
    assert float(np.abs(logits - tied_logits).max()) > 0.01
    loaded = keras_hub.models.MaskedLM.from_preset(str(tmp_path / "preset"))
    assert loaded.tie_word_embeddings is False
    np.testing.assert_allclose(np.asarray(loaded(inputs)), logits, atol=1e-6)


def test_untied_decoder_under_a_tied_config_is_refused(tmp_path):
    directory, _ = _untied_fixture(tmp_path, tie_word_embeddings=True)
    with pytest.raises(ValueError) as error:
        convert_checkpoint("hf", str(directory))
    message = str(error.value)
    assert (
        "has an untied masked LM head: its decoder generator_lm_head.weight differs from "
        in message
    )
    assert "embeddings.word_embeddings.weight by up to 0." in message
    assert "ConvBertMaskedLM(backbone, tie_word_embeddings=False)" in message
    assert '"tie_word_embeddings": false' in message


def test_untied_config_without_a_decoder_is_refused(tmp_path):
    # transformers would start such a decoder from random weights.
    directory = tmp_path / "no_decoder"
    shutil.copytree(MASKED_LM, directory)
    with open(directory / "config.json") as f:
        config = json.load(f)
    with open(directory / "config.json", "w") as f:
        json.dump(dict(config, tie_word_embeddings=False), f)
    with pytest.raises(ValueError, match="is missing 1 weight.*: generator_lm_head.weight"):
        convert_checkpoint("hf", str(directory))


def test_untied_decoder_is_named_when_converting_the_backbone(tmp_path):
    directory, _ = _untied_fixture(tmp_path, tie_word_embeddings=False)
    with pytest.warns(UserWarning, match=r"does not use.*generator_lm_head\.weight"):
        convert_checkpoint("hf", str(directory), task="backbone")


def _transformers_masked_lm(tie_word_embeddings):
    import torch
    import transformers

    config = transformers.ConvBertConfig(
        vocab_size=64,
        hidden_size=32,
        embedding_size=16,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        tie_word_embeddings=tie_word_embeddings,
        architectures=["ConvBertForMaskedLM"],
    )
    torch.manual_seed(0)
    model = transformers.ConvBertForMaskedLM(config).eval()
    if not tie_word_embeddings:
        with torch.no_grad():
            model.generator_lm_head.weight.add_(torch.randn_like(model.generator_lm_head.weight))
    return model


def _transformers_logits(model, inputs):
    import torch

    with torch.no_grad():
        return model(
            input_ids=torch.tensor(inputs["token_ids"], dtype=torch.long),
            token_type_ids=torch.tensor(inputs["segment_ids"], dtype=torch.long),
            attention_mask=torch.tensor(inputs["padding_mask"], dtype=torch.long),
        ).logits.numpy()


@pytest.mark.reference
def test_untied_transformers_checkpoint_matches_transformers(tmp_path):
    theirs = _transformers_masked_lm(tie_word_embeddings=False)
    theirs.save_pretrained(tmp_path / "hf")
    inputs, _ = _masked_lm_inputs()
    ours = convert_checkpoint("hf", str(tmp_path / "hf"))
    assert ours.tie_word_embeddings is False
    expected = _transformers_logits(theirs, inputs)
    assert float(np.abs(np.asarray(ours(inputs)) - expected).max()) < TOLERANCE


@pytest.mark.reference
def test_tied_bin_with_both_tensors_converts_without_warnings(tmp_path):
    import torch

    theirs = _transformers_masked_lm(tie_word_embeddings=True)
    directory = tmp_path / "hf"
    theirs.save_pretrained(directory)
    os.remove(directory / "model.safetensors")
    # A state dict holds the decoder and the word embeddings (one storage).
    torch.save(theirs.state_dict(), directory / "pytorch_model.bin")
    assert "generator_lm_head.weight" in load_torch_state_dict(directory / "pytorch_model.bin")
    inputs, _ = _masked_lm_inputs()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours = convert_checkpoint("hf", str(directory))
    assert not [w for w in caught if "generator_lm_head" in str(w.message)]
    assert ours.tie_word_embeddings is True
    expected = _transformers_logits(theirs, inputs)
    assert float(np.abs(np.asarray(ours(inputs)) - expected).max()) < TOLERANCE


# --- Corpora that are not valid UTF-8 ---------------------------------------

# 14 valid bytes; "caf\xe9 " (a lone lead byte, at 17); two bytes that never
# start a sequence; a euro sign cut after two of its bytes; a whole one.
CORPUS = b"first line ok\ncaf\xe9 au lait\n\xff\xfe\neuro \xe2\x82\nok \xe2\x82\xac\n"
CORPUS_COUNTS = InvalidUtf8(invalid_sequences=4, invalid_bytes=5, first_offset=17)


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 1 << 20])
def test_invalid_utf8_is_counted_exactly_across_chunks(tmp_path, chunk_size):
    path = tmp_path / "corpus.txt"
    path.write_bytes(CORPUS)
    assert count_invalid_utf8(path, chunk_size) == CORPUS_COUNTS


def test_valid_and_truncated_files(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes("naïve café €\n".encode() * 3)
    assert count_invalid_utf8(path, 4) == InvalidUtf8(0, 0, None)
    path.write_bytes(b"ends in the middle of \xf0\x9f\x98")
    assert count_invalid_utf8(path, 4) == InvalidUtf8(1, 3, 22)
    path.write_bytes(b"")
    assert count_invalid_utf8(path) == InvalidUtf8(0, 0, None)


def test_counts_are_those_of_pythons_decoder_on_random_bytes(tmp_path):
    rng = random.Random(0)
    data = bytes(rng.choice([rng.randrange(128), rng.randrange(256)]) for _ in range(20000))
    path = tmp_path / "noise.txt"
    path.write_bytes(data)
    errors = []

    def record(error):
        errors.append((error.start, error.end))
        return "\ufffd", error.end

    codecs.register_error("test_untrusted_inputs.record", record)
    data.decode("utf-8", "test_untrusted_inputs.record")
    expected = InvalidUtf8(len(errors), sum(end - start for start, end in errors), errors[0][0])
    assert len(errors) > 1000
    for chunk_size in (7, 4096):
        assert count_invalid_utf8(path, chunk_size) == expected


def test_each_count_is_one_replacement_for_the_readers_and_the_tokenizer(tmp_path):
    import tensorflow as tf

    from convbert_keras.data.corpus import _read_blank_line_documents
    from convbert_keras.models.tokenizer import valid_utf8

    path = tmp_path / "corpus.txt"
    path.write_bytes(CORPUS)
    text = " ".join(_read_blank_line_documents(path))
    assert text.count("\ufffd") == CORPUS_COUNTS.invalid_sequences
    transcoded = valid_utf8(tf.constant(CORPUS)).numpy().decode("utf-8")
    assert transcoded.count("\ufffd") == CORPUS_COUNTS.invalid_sequences


def test_corpus_description_counts_and_warns(tmp_path):
    bad = tmp_path / "corpus.txt"
    bad.write_bytes(CORPUS)
    good = tmp_path / "clean.txt"
    good.write_text("all valid\n", encoding="utf-8")
    with pytest.warns(UserWarning) as caught:
        description = describe_text_files([bad, good])
    assert [str(w.message) for w in caught] == [
        f"{bad}: 4 invalid UTF-8 sequence(s) (5 bytes) replaced by U+FFFD, which "
        "the tokenizer drops; the first at byte 17. Re-encode the file as UTF-8 "
        "if it uses another encoding."
    ]
    assert description == {
        "files": [[str(bad), len(CORPUS)], [str(good), 10]],
        "blank_line_separated": False,
        "invalid_utf8": {
            str(bad): {"invalid_sequences": 4, "invalid_bytes": 5, "first_offset": 17}
        },
    }
    json.dumps(description)  # saved with the run


def test_valid_corpus_description_is_unchanged_and_silent(tmp_path):
    good = tmp_path / "clean.txt"
    good.write_text("all valid\n", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        description = describe_text_files(str(good), blank_line_separated=True)
    # The form `scripts/pretrain.py` has always saved: old runs still resume.
    assert description == {"files": [[str(good), 10]], "blank_line_separated": True}
    with pytest.raises(ValueError, match="Corpus file.*not found"):
        describe_text_files([good, tmp_path / "missing.txt"])


def test_untied_decoder_trains_and_gives_float32_logits_under_mixed_precision():
    from convbert_keras import ConvBertBackbone
    from convbert_keras import ConvBertMaskedLM

    backbone = ConvBertBackbone(
        vocabulary_size=64,
        num_layers=1,
        num_heads=4,
        hidden_dim=32,
        intermediate_dim=64,
        embedding_dim=16,
        max_sequence_length=16,
        dtype="mixed_bfloat16",
    )
    model = ConvBertMaskedLM(backbone, tie_word_embeddings=False)
    decoder = model.masked_lm_head.token_embedding.embeddings
    assert decoder.shape == (64, 16) and decoder.dtype == "float32"
    assert any(v is decoder for v in model.trainable_weights)
    inputs = {
        "token_ids": np.full((2, 8), 5, "int32"),
        "segment_ids": np.zeros((2, 8), "int32"),
        "padding_mask": np.ones((2, 8), "int32"),
        "mask_positions": np.zeros((2, 2), "int32"),
    }
    logits = model(inputs)
    assert logits.dtype == "float32" and np.isfinite(np.asarray(logits)).all()
