"""Every example in the docstrings that the API reference renders runs,
and every public class and function is in the API reference with a
docstring. Examples start in a folder holding `preset_dir/`, `vocab.txt`
and `conv-bert-small/` (`example_folder`); markers: `tests/docs_blocks.py`.
"""

import importlib
import inspect
import os
import shutil

import pytest
from docs_blocks import FIXTURES
from docs_blocks import PUBLIC_PACKAGES
from docs_blocks import api_reference
from docs_blocks import docstring_examples
from docs_blocks import run_block

EXAMPLES = docstring_examples()


@pytest.fixture(scope="module")
def example_folder(tmp_path_factory):
    """What the docstrings' examples start from: `preset_dir/`, a keras-hub
    preset of a tiny ConvBERT (one layer, 32 positions: each example that
    trains compiles its own step) and its tokenizer, its `vocab.txt`, and a
    transformers checkpoint in `conv-bert-small/`."""
    from support import VOCAB
    from support import backbone
    from support import tokenizer

    folder = tmp_path_factory.mktemp("docstrings")
    backbone().save_to_preset(str(folder / "preset_dir"))
    tokenizer().save_to_preset(str(folder / "preset_dir"))
    shutil.copy(VOCAB, folder / "vocab.txt")
    shutil.copytree(os.path.join(FIXTURES, "tiny"), folder / "conv-bert-small")
    return folder


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, line, code, marker", EXAMPLES, ids=[f"{e[0]}:{e[1]}" for e in EXAMPLES]
)
def test_docstring_example_runs(name, line, code, marker, example_folder, monkeypatch):
    if marker and marker.startswith("skip"):
        pytest.skip(marker.partition(",")[2].strip())
    assert marker is None, f"{name}: unknown docs-test marker {marker!r}"
    monkeypatch.chdir(example_folder)
    # Examples name the package's public classes and functions, NumPy,
    # TensorFlow and Keras without importing them, as keras-hub's do.
    import keras
    import numpy as np
    import tensorflow as tf

    namespace = {"np": np, "tf": tf, "keras": keras, "__name__": "__docs__"}
    for package in PUBLIC_PACKAGES:
        module = importlib.import_module(package)
        namespace.update({n: getattr(module, n) for n in module.__all__})
    run_block(code, namespace, name, line)


def test_every_public_class_and_function_is_in_the_api_reference_with_a_docstring():
    rendered = {id(obj) for _, _, obj in api_reference()}
    missing, undocumented = [], []
    for package in PUBLIC_PACKAGES:
        module = importlib.import_module(package)
        for name in module.__all__:
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue  # constants (CONVBERT_CONFIGS) are shown where they are used
            if id(obj) not in rendered:
                missing.append(f"{package}.{name}")
            if not (obj.__doc__ or "").strip():
                undocumented.append(f"{package}.{name}")
    assert not missing, f"not in docs/api/: {missing}"
    assert not undocumented, f"no docstring: {undocumented}"
    assert all(doc for _, _, obj in api_reference() if (doc := inspect.getdoc(obj)))
