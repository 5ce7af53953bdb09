"""Learning a vocabulary that ConvBertTokenizer then uses."""

import os
import subprocess
import sys

import pytest

from convbert_keras import ConvBertTokenizer
from convbert_keras.models.vocabulary import build_vocabulary

CORPUS = [
    "The Café served coffee. The cafe served tea!",
    "Coffee and tea are served at the café every morning.",
] * 20


def test_built_vocabulary_tokenizes_its_corpus(tmp_path):
    output = tmp_path / "vocab.txt"
    vocabulary = build_vocabulary(texts=CORPUS, vocabulary_size=200, output=output)
    assert vocabulary[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert len(vocabulary) <= 200 and len(set(vocabulary)) == len(vocabulary)
    # Normalised like the tokenizer: lowercase, accents stripped.
    assert "cafe" in vocabulary and "Café" not in vocabulary and "café" not in vocabulary
    tokenizer = ConvBertTokenizer(vocabulary=str(output))
    ids = [int(i) for i in tokenizer(CORPUS[0])]
    assert tokenizer.token_to_id("[UNK]") not in ids
    assert tokenizer.detokenize(ids) == "the cafe served coffee . the cafe served tea !"


COMMANDS = {
    "convbert-pretrain": "pretrain",
    "convbert-finetune": "finetune",
    "convbert-convert": "convert",
    "convbert-export": "export",
    "convbert-benchmark": "benchmark",
    "convbert-demo": "demo",
    "convbert-compare": "compare",
    "convbert-vocabulary": "vocabulary",
    "convbert-serve-client": "serve_client",
}


def test_console_scripts_are_declared_and_answer_help(capsys):
    from importlib.metadata import entry_points

    declared = {
        e.name: e for e in entry_points(group="console_scripts") if e.name.startswith("convbert-")
    }
    assert set(declared) == set(COMMANDS)
    for name, module in COMMANDS.items():
        assert declared[name].value == f"convbert_keras.cli.{module}:main"
        with pytest.raises(SystemExit) as stopped:
            declared[name].load()(["--help"])
        assert stopped.value.code == 0
        assert capsys.readouterr().out.startswith("usage: ")


def test_installed_version_is_the_package_version():
    from importlib.metadata import version

    import convbert_keras

    # setup.cfg reads it from the package: one version string.
    assert version("convbert-keras") == convbert_keras.__version__


@pytest.mark.slow
def test_vocabulary_cli_and_bad_input(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(CORPUS), encoding="utf-8")
    output = tmp_path / "vocab.txt"
    # The installed command, then the wrapper in scripts/.
    command = os.path.join(os.path.dirname(sys.executable), "convbert-vocabulary")
    script = os.path.join(os.path.dirname(__file__), "..", "scripts", "build_vocabulary.py")
    result = subprocess.run(
        [command, str(corpus), "--size", "120", "--output", str(output)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert output.read_text(encoding="utf-8").split("\n")[0] == "[PAD]"
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, script, str(empty), "--output", str(output)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "no text to learn a vocabulary from" in result.stderr
    with pytest.raises(ValueError, match="must exceed the 5 special tokens"):
        build_vocabulary(texts=CORPUS, vocabulary_size=5)
