"""The test suite's start-up module (tests/startup/sitecustomize.py)."""

import json
import os
import subprocess
import sys

from run_modules import STARTUP

# What a process imports with TensorFlow and Keras, then on its own.
PROBE = """
import json, sys
import keras, keras_hub, tensorflow
integrations = sorted(m for m in ("jax", "matplotlib", "scipy", "sklearn") if m in sys.modules)
import grain, jax, matplotlib.pyplot, scipy.stats, sklearn.metrics
print(json.dumps({"with_tensorflow": integrations,
                  "sklearn_wrapper": keras.src.wrappers.sklearn_wrapper.sklearn is not None,
                  "grain_batching": keras_hub.src.utils.pipeline_model.grain is not None,
                  "grain_source": hasattr(grain.MapDataset, "source"),
                  "jax_add": int(jax.numpy.add(1, 2))}))
"""


def probe(pythonpath):
    env = dict(os.environ, PYTHONPATH=pythonpath, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_tensorflow_and_keras_start_without_their_optional_integrations():
    # Started as the suite starts its processes: TensorFlow and Keras import
    # none of the four, keras-hub batches without grain, and a test's own
    # import of each still works.
    hidden = probe(STARTUP)
    assert hidden == {
        "with_tensorflow": [],
        "sklearn_wrapper": False,
        "grain_batching": False,
        "grain_source": True,
        "jax_add": 3,
    }
    # Without the start-up module, TensorFlow and Keras import all four
    # (installed for the tests) on their own, and keras-hub batches with grain.
    plain = probe("")
    assert plain == {
        "with_tensorflow": ["jax", "matplotlib", "scipy", "sklearn"],
        "sklearn_wrapper": True,
        "grain_batching": True,
        "grain_source": True,
        "jax_add": 3,
    }
