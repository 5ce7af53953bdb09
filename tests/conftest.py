import gc
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# XLA's quick settings for the tests' steps: LLVM at optimisation level 0
# and the classic fusion emitters (TensorFlow 2.21's XLA compiles with both
# flags; constraints.txt pins it: XLA aborts on a flag it does not know).
# The tests' tiny models run a few steps each, so compiling is most of
# their cost: a first `fit` of the tiny classifier takes 2.8 s of CPU
# instead of 5.7 s, for the same HLO (what our code emits, what the tests
# check) compiled with less optimisation. Tests marked `optimized_xla`
# train long enough that the optimised code pays (at level 0,
# test_real_data takes twice as long); a process with one of them keeps
# XLA's defaults, as does one started with XLA_FLAGS set.
QUICK_XLA_FLAGS = "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false"

import numpy as np  # noqa: E402
import pytest  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
FIXTURE_NAMES = ("tiny", "tiny_grouped")


def load_reference(name):
    """Inputs and transformers' outputs saved by make_reference_fixtures."""
    data = np.load(os.path.join(FIXTURES, name, "reference.npz"))
    inputs = {k: data[k] for k in ("token_ids", "segment_ids", "padding_mask")}
    return inputs, data["sequence_output"]


@pytest.fixture(params=FIXTURE_NAMES)
def fixture_name(request):
    return request.param


@pytest.fixture(scope="module", autouse=True)
def collect_module_garbage():
    """Once a module's fixtures are gone, everything `fixed_seed` froze is
    collectable again (a module-scoped model frozen while in use would
    otherwise stay until the process ends)."""
    yield
    gc.unfreeze()
    gc.collect()


@pytest.fixture(autouse=True)
def fixed_seed():
    """Same initial weights, dropout masks and data order on every run; and
    afterwards Keras' global state cleared and garbage collected, so that
    the models, traced functions and compiled XLA programs of one test are
    freed before the next (a test process otherwise keeps growing).

    What survives is frozen out of later collections: TensorFlow, Keras and
    the earlier tests' survivors are over 500,000 objects, and a full
    collection walks them all (about 0.7 s after each test, a tenth of the
    suite's time, for nothing; frozen, about 0.05 s)."""
    import keras

    keras.utils.set_random_seed(1234)
    yield
    keras.backend.clear_session(free_memory=True)
    gc.freeze()


def pytest_collection_finish(session):
    """XLA reads XLA_FLAGS when it first compiles, after collection, so the
    tests selected to run (`-k` and `-m` applied) decide, for this process
    and the processes its tests start."""
    if "XLA_FLAGS" not in os.environ and not any(
        item.get_closest_marker("optimized_xla") for item in session.items
    ):
        os.environ["XLA_FLAGS"] = QUICK_XLA_FLAGS


def _resident_kib():
    with open("/proc/self/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item):
    """With CONVBERT_TEST_MEMORY_LOG set, appends each test's process,
    resident and peak memory (KiB) after it: how the suite's per-process
    peak is measured."""
    yield
    path = os.environ.get("CONVBERT_TEST_MEMORY_LOG")
    if path and os.path.exists("/proc/self/status"):
        rss, peak = _resident_kib()
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"{os.getpid()}\t{rss}\t{peak}\t{item.nodeid}\n")
