"""Run by `test_backends.py` under `KERAS_BACKEND=jax` or `torch`:

    python tests/backend_worker.py WORK_DIR

For the backbone and every task in `WORK_DIR/presets/` (saved on TensorFlow):
loads it, computes its outputs on the token ids of `WORK_DIR/inputs.npz`,
fits it on raw examples (tokenized in `tf.data`, as keras-hub does on every
backend; the masked LM on batches its preprocessor masked once, so that its
weights are the same in every run), predicts raw examples, saves it as a
preset and loads that again.
Writes `WORK_DIR/<backend>/`: `results.json`, `outputs.npz` (before
training), `trained.npz` (after), the presets it saved and each one's
weights as the backend held them (`<name>_weights.npz`).
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from backend_cases import CLASSES  # noqa: E402
from backend_cases import NAMES  # noqa: E402
from backend_cases import build  # noqa: E402
from backend_cases import outputs  # noqa: E402
from backend_cases import training_data  # noqa: E402
from support import NEGATIVE  # noqa: E402
from support import POSITIVE  # noqa: E402


def weights(model):
    return [np.array(keras.ops.convert_to_numpy(w)) for w in model.trainable_weights]


class DeterministicBatches(keras.utils.PyDataset):
    """Preprocessed `(x, y, sample_weight)` batches, as they are."""

    def __init__(self, batches):
        super().__init__()
        self.batches = batches

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, index):
        return self.batches[index]


def check(name, work_dir, inputs, out_dir):
    model = CLASSES[name].from_preset(os.path.join(work_dir, "presets", name))
    result = {"class": type(model).__name__}
    before = outputs(model, inputs)
    if name == "backbone":
        trained = before
    else:
        result["jit_compile"] = model.jit_compile
        x, y = training_data(name)
        initial = weights(model)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        if name == "masked_lm":
            # keras-hub draws the masks in its parallel tf.data pipeline,
            # differently in every run; the weights the tests judge must not
            # depend on that. Masks drawn once here (eagerly, from the
            # seeded generator), then Keras' own fit on them.
            batches = [model.preprocessor(x[i : i + 4]) for i in range(0, len(x), 4)]
            history = keras.Model.fit(model, DeterministicBatches(batches), epochs=2, verbose=0)
        else:
            history = model.fit(x=x, y=y, batch_size=4, epochs=2, verbose=0)
        result["loss"] = [float(v) for v in history.history["loss"]]
        result["moved"] = max(float(np.abs(a - b).max()) for a, b in zip(initial, weights(model)))
        predicted = model.predict(x, batch_size=4, verbose=0)
        result["predict_shape"] = list(np.shape(predicted))
        result["predict_finite"] = bool(np.isfinite(predicted).all())
        trained = outputs(model, inputs)
    saved = os.path.join(out_dir, "presets", name)
    model.save_to_preset(saved)
    np.savez(
        os.path.join(out_dir, f"{name}_weights.npz"),
        **{v.path: keras.ops.convert_to_numpy(v) for v in model.weights},
    )
    reloaded = CLASSES[name].from_preset(saved)
    result["reload_difference"] = float(np.abs(outputs(reloaded, inputs) - trained).max())
    return result, before, trained


def learning_losses():
    """A fresh classifier fitted to tell praise from criticism (as
    test_tasks' learning test does on TensorFlow): its loss per epoch."""
    model = build("text_classifier")
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    x = POSITIVE + NEGATIVE
    y = np.array([1] * len(POSITIVE) + [0] * len(NEGATIVE))
    history = model.fit(x=x * 10, y=np.tile(y, 10), batch_size=4, epochs=4, verbose=0)
    return [float(v) for v in history.history["loss"]]


def main(work_dir):
    keras.utils.set_random_seed(0)
    backend = keras.config.backend()
    out_dir = os.path.join(work_dir, backend)
    os.makedirs(out_dir, exist_ok=True)
    data = np.load(os.path.join(work_dir, "inputs.npz"))
    results, before, after = {"backend": backend}, {}, {}
    results["learning"] = learning_losses()
    for name in NAMES:
        inputs = {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith(name + "/")}
        results[name], before[name], after[name] = check(name, work_dir, inputs, out_dir)
    np.savez(os.path.join(out_dir, "outputs.npz"), **before)
    np.savez(os.path.join(out_dir, "trained.npz"), **after)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
