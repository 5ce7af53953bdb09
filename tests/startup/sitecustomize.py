"""Imported at start-up by every process of the test suite
(`tests/run_modules.py` puts this folder on PYTHONPATH).

TensorFlow and Keras import jax, matplotlib, scipy and scikit-learn whenever
they are installed, for integrations our code never calls: `tf.lite`'s
utilities and Keras' orbax checkpoint callback import jax, TensorFlow's
legacy Keras scipy, Keras' wrappers scikit-learn (its estimators) and its
visualization utilities matplotlib. The test environment has all four
(Keras' JAX backend, the reference metrics, benchmark plots), and with them
starting TensorFlow, keras-hub and tf-text takes 4.7 s of CPU instead of
2.8 s; the suite starts about 50 processes. Here those integrations see the
packages as not installed, as on many users' machines; any other import of
them (a test's own, Keras' JAX backend) works as usual.

keras-hub batches in-memory inputs (`fit(texts, labels)`) with grain where
grain is installed, with tf.data otherwise. grain is installed for keras-hub's
test harness (tests/test_keras_hub_harness.py), which drives grain itself;
keras-hub's batching sees it as not installed, so the suite trains on the
path of keras-hub's default install.
"""

import importlib.abc
import sys

# The modules whose optional imports of TensorFlow's and Keras' integrations
# are refused.
INTEGRATIONS = (
    "tensorflow.lite.",
    "tensorflow.python.keras.",
    "keras.src.callbacks.orbax_checkpoint",
    "keras.src.visualization.",
    "keras.src.wrappers.",
)
# Each hidden package, and the modules it is hidden from.
HIDDEN_FROM = {
    **{package: INTEGRATIONS for package in ("jax", "matplotlib", "scipy", "sklearn")},
    "grain": ("keras_hub.src.utils.pipeline_model",),
}


class OptionalIntegrations(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        importers = HIDDEN_FROM.get(name.split(".")[0])
        if importers is None:
            return None
        frame = sys._getframe(1)
        while frame is not None and frame.f_globals.get("__name__", "").startswith("importlib"):
            frame = frame.f_back
        importer = frame.f_globals.get("__name__", "") if frame is not None else ""
        if importer.startswith(importers):
            raise ModuleNotFoundError(f"{name} is hidden from {importer} in the test suite")
        return None


sys.meta_path.insert(0, OptionalIntegrations())
