"""`scripts/pip_sources.py`: pip's package sources handed on to uv."""

import importlib.util
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "pip_sources.py")


def load():
    spec = importlib.util.spec_from_file_location("pip_sources", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sections_override_as_pip_install_reads_them_and_locations_are_split_once():
    pip_sources = load()
    settings = {
        "index-url": [(":env:", "https://env/simple"), ("global", "https://global/simple")],
        "extra-index-url": [("global", "file:///a file:///b"), ("install", "file:///b")],
        "find-links": [(":env:", "/wheels"), ("global", "/wheels")],
    }
    assert pip_sources.uv_arguments(settings) == [
        "--index-url",
        "https://env/simple",
        "--extra-index-url",
        "file:///a",
        "--extra-index-url",
        "file:///b",
        "--find-links",
        "/wheels",
    ]
    assert pip_sources.uv_arguments({key: [] for key in pip_sources.KEYS}) == []


def test_reads_pip_config_files_and_variables(tmp_path):
    config = tmp_path / "pip.conf"
    config.write_text(
        "[global]\nindex-url = https://global/simple\nfind-links = /disk/wheels\n"
        "[install]\nindex-url = https://install/simple\n[download]\nfind-links = /other\n"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    env.update(
        PIP_CONFIG_FILE=str(config),
        PIP_EXTRA_INDEX_URL="file:///mirror/simple",
        PYTHONPATH="",
    )
    output = subprocess.run(
        [sys.executable, SCRIPT], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert output[:2] == ["--index-url", "https://install/simple"]
    assert "/disk/wheels" in output and "/other" not in output
    assert output[output.index("file:///mirror/simple") - 1] == "--extra-index-url"
