"""`from_preset` on transformers checkpoints (`hf://` handles and
`save_pretrained` directories) and keras-hub's `upload_preset` of our presets.

The Hub is not reachable here, so `hf://` goes through huggingface_hub's own
offline path: a cache laid out as `hf_hub_download` writes it (refs, blobs,
snapshot links), with `HF_HUB_OFFLINE` on. Outputs are checked against the
fixtures' transformers references (`scripts/make_reference_fixtures.py`).
"""

import hashlib
import json
import os
import shutil

import huggingface_hub
import huggingface_hub.constants
import keras_hub
import numpy as np
import pytest
from conftest import FIXTURES
from conftest import load_reference
from support import backbone
from support import tokenizer

from convbert_keras import ConvBertBackbone
from convbert_keras import ConvBertMaskedLMPreprocessor
from convbert_keras import ConvBertQuestionAnswerer
from convbert_keras import ConvBertQuestionAnswererPreprocessor
from convbert_keras import ConvBertTextClassifier
from convbert_keras import ConvBertTextClassifierPreprocessor
from convbert_keras import ConvBertTokenClassifier
from convbert_keras import ConvBertTokenizer
from convbert_keras.convert import convert_checkpoint

# The fixtures differ from transformers by about 1e-6 (float32 summation order).
TOLERANCE = 1e-5


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An offline huggingface_hub cache; `hub(repo_id, files)` publishes
    `{name in repo: local path}` as the repository's main revision."""
    cache = tmp_path / "hub"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)

    def publish(repo_id, files):
        repo = cache / f"models--{repo_id.replace('/', '--')}"
        commit = hashlib.sha1(json.dumps(sorted(files)).encode()).hexdigest()
        snapshot = repo / "snapshots" / commit
        for name, source in files.items():
            with open(source, "rb") as f:
                data = f.read()
            blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
            blob.parent.mkdir(parents=True, exist_ok=True)
            blob.write_bytes(data)
            link = snapshot / name
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(os.path.relpath(blob, link.parent))
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / "main").write_text(commit)
        return f"hf://{repo_id}"

    return publish


def fixture_files(name, *filenames):
    return {filename: os.path.join(FIXTURES, name, filename) for filename in filenames}


def task_reference(name):
    data = np.load(os.path.join(FIXTURES, name, "reference.npz"))
    return {k: data[k] for k in ("token_ids", "segment_ids", "padding_mask")}, data["logits"]


def sequence_output(backbone, inputs):
    return np.asarray(backbone(inputs)["sequence_output"])


def test_backbone_from_hub_handle_matches_transformers(hub):
    # Only the PyTorch pickle: the loader falls back past the absent safetensors.
    handle = hub("org/tiny", fixture_files("tiny", "config.json", "vocab.txt", "pytorch_model.bin"))
    inputs, expected = load_reference("tiny")
    backbone = ConvBertBackbone.from_preset(handle)
    assert type(backbone) is ConvBertBackbone
    assert np.abs(sequence_output(backbone, inputs) - expected).max() < TOLERANCE
    # Negative control: the same architecture without the weights is far off.
    untrained = ConvBertBackbone.from_preset(handle, load_weights=False)
    assert np.abs(sequence_output(untrained, inputs) - expected).max() > 1e-2
    # Arguments override the checkpoint's, as with keras-hub presets.
    assert ConvBertBackbone.from_preset(handle, dropout=0.0).dropout == 0.0


def test_task_from_hub_handle_keeps_its_head_unless_num_classes_is_given(hub):
    name = "tiny_text_classifier"
    handle = hub(
        "org/classifier", fixture_files(name, "config.json", "vocab.txt", "model.safetensors")
    )
    inputs, expected = task_reference(name)
    classifier = ConvBertTextClassifier.from_preset(handle)
    assert np.abs(np.asarray(classifier(inputs)) - expected).max() < TOLERANCE
    # The preprocessor: the checkpoint's vocabulary and positions.
    assert classifier.preprocessor.sequence_length == 64
    assert classifier.preprocessor.tokenizer.vocabulary_size() == 64

    fresh = ConvBertTextClassifier.from_preset(handle, num_classes=5)
    assert np.asarray(fresh(inputs)).shape == (len(inputs["token_ids"]), 5)
    np.testing.assert_allclose(
        sequence_output(fresh.backbone, inputs),
        sequence_output(classifier.backbone, inputs),
        atol=1e-6,
    )


@pytest.mark.parametrize("name, task_cls", [("tiny_token_classifier", ConvBertTokenClassifier)])
def test_task_from_save_pretrained_directory_matches_transformers(name, task_cls):
    inputs, expected = task_reference(name)
    model = task_cls.from_preset(os.path.join(FIXTURES, name))
    assert np.abs(np.asarray(model(inputs)) - expected).max() < TOLERANCE


def test_backbone_checkpoint_gives_a_task_a_new_head_and_asks_for_its_arguments():
    directory = os.path.join(FIXTURES, "tiny")
    with pytest.raises(TypeError, match=r"ConvBertModel checkpoint without a .*num_classes"):
        ConvBertTextClassifier.from_preset(directory)
    answerer = ConvBertQuestionAnswerer.from_preset(directory)
    inputs, expected = load_reference("tiny")
    np.testing.assert_allclose(sequence_output(answerer.backbone, inputs), expected, atol=TOLERANCE)
    # SQuAD's windows scaled to the checkpoint's 64 positions.
    assert answerer.preprocessor.sequence_length == 64
    assert answerer.preprocessor.doc_stride == 21


def test_a_keras_hub_preset_without_a_preprocessor_fits_its_positions(tmp_path):
    # What convert_checkpoint and pretraining write: a backbone of 32
    # positions and its tokenizer. keras-hub alone would give every task and
    # preprocessor its default length (512 tokens), which fails inside XLA.
    preset = str(tmp_path / "preset")
    backbone().save_to_preset(preset)
    tokenizer().save_to_preset(preset)
    classifier = ConvBertTextClassifier.from_preset(preset, num_classes=2)
    assert classifier.preprocessor.sequence_length == 32
    answerer = ConvBertQuestionAnswerer.from_preset(preset)
    assert (answerer.preprocessor.sequence_length, answerer.preprocessor.doc_stride) == (32, 10)
    assert ConvBertMaskedLMPreprocessor.from_preset(preset).sequence_length == 32
    windows = ConvBertQuestionAnswererPreprocessor.from_preset(preset)
    assert (windows.sequence_length, windows.doc_stride, windows.max_query_length) == (32, 10, 8)
    assert ConvBertMaskedLMPreprocessor.from_preset(preset, sequence_length=8).sequence_length == 8
    classifier.fit(x=["the movie was good", "bad plot"], y=[1, 0], batch_size=2)
    # A preprocessor the preset does save keeps its own length.
    ConvBertTextClassifier(
        backbone(),
        num_classes=2,
        preprocessor=ConvBertTextClassifierPreprocessor(tokenizer(), sequence_length=12),
    ).save_to_preset(preset)
    assert ConvBertTextClassifier.from_preset(preset).preprocessor.sequence_length == 12


def test_a_trained_task_preset_holds_the_model_not_its_optimizer(tmp_path):
    import warnings

    import h5py
    from support import sentiment_classifier

    classifier = sentiment_classifier()
    classifier.fit(x=["the movie was good", "bad plot"], y=[1, 0], batch_size=2, verbose=0)
    head = [np.asarray(w) for w in classifier.weights if "backbone" not in w.path]
    new, old = str(tmp_path / "new"), str(tmp_path / "old")
    classifier.save_to_preset(new)
    classifier.save_to_preset(old)
    # What keras-hub's own method writes: the optimizer's slots too.
    keras_hub.models.Task.save_task_weights(classifier, os.path.join(old, "task.weights.h5"))

    def groups(preset):
        with h5py.File(os.path.join(preset, "task.weights.h5")) as f:
            return set(f.keys()) | set(f.get("optimizer", {}).keys())

    assert "optimizer" in groups(old) and "optimizer" not in groups(new)
    for preset in (new, old):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loaded = ConvBertTextClassifier.from_preset(preset)
        assert not [w for w in caught if "Skipping variable loading" in str(w.message)]
        loaded_head = [np.asarray(w) for w in loaded.weights if "backbone" not in w.path]
        for a, b in zip(head, loaded_head, strict=True):
            np.testing.assert_array_equal(a, b)


def test_a_preprocessor_longer_than_the_positions_is_refused_at_once():
    long = ConvBertTextClassifierPreprocessor(tokenizer(), sequence_length=512)
    with pytest.raises(ValueError, match=r"sequences of 512 tokens, but the backbone has 32 pos"):
        ConvBertTextClassifier(backbone(), num_classes=2, preprocessor=long)


def test_preprocessors_and_tokenizer_from_hub_handle(hub):
    handle = hub("org/tiny", fixture_files("tiny", "config.json", "vocab.txt"))
    tokenizer = ConvBertTokenizer.from_preset(handle)
    assert (
        tokenizer.vocabulary
        == ConvBertTokenizer(os.path.join(FIXTURES, "tiny", "vocab.txt")).vocabulary
    )
    # A preprocessor has the defaults its task gives a converted checkpoint.
    answers = ConvBertQuestionAnswererPreprocessor.from_preset(handle)
    assert (answers.sequence_length, answers.doc_stride, answers.max_query_length) == (64, 21, 16)
    masked = ConvBertMaskedLMPreprocessor.from_preset(handle, sequence_length=16)
    assert masked.sequence_length == 16


@pytest.mark.parametrize("do_lower_case", [True, False])
def test_tokenizer_casing_follows_tokenizer_config_as_transformers_reads_it(
    tmp_path, do_lower_case
):
    import transformers

    directory = tmp_path / "checkpoint"
    directory.mkdir()
    shutil.copy(os.path.join(FIXTURES, "tiny", "vocab.txt"), directory)
    shutil.copy(os.path.join(FIXTURES, "tiny", "config.json"), directory)
    with open(directory / "tokenizer_config.json", "w") as f:
        json.dump({"do_lower_case": do_lower_case, "tokenizer_class": "ConvBertTokenizer"}, f)
    texts = ["Hello World", "hello THE Movie", "the Fílm was góod"]
    theirs = transformers.ConvBertTokenizer.from_pretrained(str(directory))
    expected = [theirs(text, add_special_tokens=False)["input_ids"] for text in texts]
    ours = ConvBertTokenizer.from_preset(str(directory))
    assert [[int(i) for i in ids] for ids in ours(texts)] == expected
    # The cases differ, so the check can tell the settings apart.
    assert (expected[0] == [1, 1]) is not do_lower_case


def test_convert_checkpoint_takes_a_hub_handle(hub, tmp_path):
    handle = hub("org/tiny", fixture_files("tiny", "config.json", "vocab.txt", "model.safetensors"))
    convert_checkpoint("hf", handle, str(tmp_path / "preset"))
    inputs, expected = load_reference("tiny")
    loaded = ConvBertBackbone.from_preset(str(tmp_path / "preset"))
    assert np.abs(sequence_output(loaded, inputs) - expected).max() < TOLERANCE
    assert ConvBertTokenizer.from_preset(str(tmp_path / "preset")).vocabulary_size() == 64


def test_hub_errors_name_the_problem(hub, tmp_path):
    with pytest.raises(FileNotFoundError, match="not in huggingface_hub's cache"):
        ConvBertBackbone.from_preset("hf://org/never-fetched")
    with pytest.raises(ValueError, match="expected hf://ORG/NAME"):
        ConvBertBackbone.from_preset("hf://org//bad")
    handle = hub("org/config-only", fixture_files("tiny", "config.json"))
    with pytest.raises(FileNotFoundError, match="org/config-only has no weights"):
        ConvBertBackbone.from_preset(handle)
    with pytest.raises(ValueError, match="has no vocab.txt"):
        ConvBertTokenizer.from_preset(handle)
    bert = tmp_path / "bert_config.json"
    bert.write_text(json.dumps({"model_type": "bert", "vocab_size": 64}))
    handle = hub("org/bert", {"config.json": str(bert)})
    with pytest.raises(ValueError, match="model_type is 'bert', not 'convbert'"):
        ConvBertBackbone.from_preset(handle)
    no_cjk = tmp_path / "tokenizer_config.json"
    no_cjk.write_text(json.dumps({"tokenize_chinese_chars": False}))
    handle = hub(
        "org/no-cjk",
        {**fixture_files("tiny", "config.json", "vocab.txt"), "tokenizer_config.json": str(no_cjk)},
    )
    with pytest.raises(ValueError, match="turns off tokenize_chinese_chars"):
        ConvBertTokenizer.from_preset(handle)


def test_uploaded_preset_loads_back_from_its_handle(hub, tmp_path, monkeypatch):
    """`keras_hub.upload_preset` to `hf://`, with the Hub's three calls it
    makes answered by a stand-in that publishes the folder to the cache."""
    from types import SimpleNamespace

    uploaded = {}

    def upload_folder(repo_id, folder_path):
        files = {}
        for root, _, names in os.walk(folder_path):
            for name in names:
                path = os.path.join(root, name)
                files[os.path.relpath(path, folder_path)] = path
        uploaded[repo_id] = sorted(files)
        hub(repo_id, files)

    monkeypatch.setattr(
        huggingface_hub, "create_repo", lambda repo_id, exist_ok: SimpleNamespace(repo_id=repo_id)
    )
    monkeypatch.setattr(huggingface_hub, "file_exists", lambda repo_id, filename: False)
    monkeypatch.setattr(huggingface_hub, "upload_folder", upload_folder)

    name = "tiny_text_classifier"
    classifier = convert_checkpoint("hf", os.path.join(FIXTURES, name), str(tmp_path / "preset"))
    keras_hub.upload_preset("hf://someone/convbert-tiny-classifier", str(tmp_path / "preset"))
    assert "README.md" in uploaded["someone/convbert-tiny-classifier"]  # keras-hub's model card
    assert not os.path.exists(tmp_path / "preset" / "README.md")

    loaded = ConvBertTextClassifier.from_preset("hf://someone/convbert-tiny-classifier")
    generic = keras_hub.models.TextClassifier.from_preset("hf://someone/convbert-tiny-classifier")
    inputs, expected = task_reference(name)
    for model in (loaded, generic):
        assert type(model) is ConvBertTextClassifier
        np.testing.assert_allclose(
            np.asarray(model(inputs)), np.asarray(classifier(inputs)), atol=1e-6
        )
    texts = ["the movie was good.", "a bad plot"]
    np.testing.assert_array_equal(
        loaded.preprocessor(texts)["token_ids"], classifier.preprocessor(texts)["token_ids"]
    )


def test_position_embeddings_extend_by_copying_and_short_inputs_keep_their_outputs():
    directory = os.path.join(FIXTURES, "tiny")  # 64 positions
    inputs, expected = load_reference("tiny")
    base = ConvBertBackbone.from_preset(directory)
    learned = np.asarray(base.position_embedding.position_embeddings)
    longer = ConvBertBackbone.from_preset(directory, max_sequence_length=150)
    table = np.asarray(longer.position_embedding.position_embeddings)
    assert table.shape == (150, learned.shape[1])
    np.testing.assert_array_equal(table, np.concatenate([learned, learned, learned[:22]]))
    # Inputs within the checkpoint's positions see the same model.
    assert np.abs(sequence_output(longer, inputs) - expected).max() < TOLERANCE
    long_inputs = {
        "token_ids": np.full((1, 150), 7, "int32"),
        "segment_ids": np.zeros((1, 150), "int32"),
        "padding_mask": np.ones((1, 150), "int32"),
    }
    assert np.isfinite(sequence_output(longer, long_inputs)).all()

    shorter = ConvBertBackbone.from_preset(directory, max_sequence_length=16)
    np.testing.assert_array_equal(
        np.asarray(shorter.position_embedding.position_embeddings), learned[:16]
    )
    cut = {name: value[:, :16] for name, value in inputs.items()}
    np.testing.assert_allclose(
        sequence_output(shorter, cut), sequence_output(base, cut), rtol=0, atol=1e-6
    )
