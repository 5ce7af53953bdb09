"""The package's layout by role: what stays at the root, the old module
paths of what moved (the same module objects, with a DeprecationWarning),
and the public names and console scripts that must keep working."""

import configparser
import importlib
import os
import sys
import warnings

import pytest

import convbert_keras
from convbert_keras.models import transformers_presets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.dirname(convbert_keras.__file__)


def test_the_package_root_keeps_only_what_every_role_shares():
    modules = sorted(name for name in os.listdir(PACKAGE) if name.endswith(".py"))
    assert modules == ["__init__.py", "_compat.py", "_start_up.py", "distribute.py", "files.py"]


@pytest.mark.parametrize("old, new", sorted(convbert_keras._MOVED.items()))
def test_a_moved_module_imports_from_its_old_path_as_the_same_object(old, new):
    old_path = f"convbert_keras.{old}"
    sys.modules.pop(old_path, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        __import__(old_path)  # as an import statement does
    module = sys.modules[old_path]
    assert module is importlib.import_module(new)
    # Still its own name and spec: pickles and reloads find it where it is.
    assert module.__name__ == new and module.__spec__.name == new
    messages = [str(w.message) for w in caught if w.category is DeprecationWarning]
    assert messages == [f"{old_path} moved to {new}; import it from there."]
    # The warning points at the import, not at the import system.
    assert caught[0].filename == __file__


def test_names_that_never_existed_still_fail_to_import():
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("convbert_keras.no_such_module")


def test_every_public_name_and_console_script_resolves():
    for name in convbert_keras.__all__:
        assert getattr(convbert_keras, name) is not None
    config = configparser.ConfigParser()
    config.read(os.path.join(ROOT, "setup.cfg"))
    scripts = config["options.entry_points"]["console_scripts"].strip().splitlines()
    assert len(scripts) == 9
    for line in scripts:
        name, target = (part.strip() for part in line.split("="))
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function)), name


def test_the_converters_register_their_reader_with_the_models():
    # The models never import the converters; importing the package
    # registers transformers' reader, which `from_preset` then asks.
    from convbert_keras.convert.hf import transformers_checkpoint

    assert transformers_checkpoint in transformers_presets._CHECKPOINT_READERS
    before = list(transformers_presets._CHECKPOINT_READERS)
    transformers_presets.register_checkpoint_reader(transformers_checkpoint)
    assert transformers_presets._CHECKPOINT_READERS == before


def test_extend_rows_cuts_or_tiles_the_learned_rows():
    table = [[1.0], [2.0], [3.0]]
    assert transformers_presets.extend_rows(table, 2).tolist() == [[1.0], [2.0]]
    assert transformers_presets.extend_rows(table, 7).ravel().tolist() == [1, 2, 3, 1, 2, 3, 1]
