"""One benchmark measurement, run as a script in a fresh process.

    python benchmark_worker.py '<json spec>'

Deliberately imports nothing of convbert_keras unless it measures it: the
peak memory of the PyTorch case must not include TensorFlow.
"""

import json
import resource
import statistics
import sys
import time

NUM_CLASSES = 2


def _reset_peak_memory():
    """Resets Linux's peak-RSS mark, so the peak read later covers only the
    timed steps (not imports, model building or XLA compilation)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass  # not Linux: the peak then includes the warm-up


def _peak_memory_mb():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed_steps(fn, warmup, repeats):
    """`(first, median)`: the seconds of the first call (which compiles,
    where anything does) and the median of `repeats` calls after `warmup`."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    for _ in range(warmup - 1):
        fn()
    _reset_peak_memory()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)


def _median_seconds(fn, warmup, repeats):
    return _timed_steps(fn, warmup, repeats)[1]


def _inputs(config, batch_size, length, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    return {
        "token_ids": rng.integers(1, config["vocabulary_size"], (batch_size, length)).astype(
            "int32"
        ),
        "segment_ids": np.zeros((batch_size, length), "int32"),
        "padding_mask": np.ones((batch_size, length), "int32"),
    }, rng.integers(0, NUM_CLASSES, (batch_size,)).astype("int32")


def _keras_worker(framework, config, batch_size, length, mode, warmup, repeats):
    import keras

    x, y = _inputs(config, batch_size, length)
    if framework in ("convbert_keras", "convbert_keras_remat"):
        from convbert_keras.layers.dropout import HashDropout
        from convbert_keras.models.backbone import ConvBertBackbone

        backbone = ConvBertBackbone(**config, remat=framework == "convbert_keras_remat")
        # The reference sequence-classification head ([CLS], dense, GELU).
        cls = backbone.output["pooled_output"]
        hidden = keras.layers.Dense(config["hidden_dim"], activation="gelu")(
            HashDropout(config["dropout"])(cls)
        )
        logits = keras.layers.Dense(NUM_CLASSES)(HashDropout(config["dropout"])(hidden))
        model = keras.Model(backbone.input, logits)
    else:
        import keras_hub

        backbone = keras_hub.models.BertBackbone(
            vocabulary_size=config["vocabulary_size"],
            num_layers=config["num_layers"],
            num_heads=config["num_heads"],
            hidden_dim=config["hidden_dim"],
            intermediate_dim=config["intermediate_dim"],
            max_sequence_length=max(config["max_sequence_length"], length),
        )
        model = keras_hub.models.BertTextClassifier(
            backbone, num_classes=NUM_CLASSES, preprocessor=None
        )
    model.compile(
        optimizer=keras.optimizers.AdamW(1e-4),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        # XLA on TensorFlow, jax.jit on JAX; torch.compile would time its
        # recompilations (see ConvBertTask.compile).
        jit_compile=keras.config.backend() != "torch",
    )
    if mode == "train":
        return _median_seconds(lambda: model.train_on_batch(x, y), warmup, repeats)
    return _median_seconds(lambda: model.predict_on_batch(x), warmup, repeats)


def _torch_worker(config, batch_size, length, mode, warmup, repeats, compiled=False):
    """`(first step, median step)` seconds of transformers' PyTorch
    ConvBERT, eager or under `torch.compile` (default inductor backend; its
    compilation happens in the first step)."""
    import torch
    import transformers

    x, y = _inputs(config["backbone"], batch_size, length)
    hf_config = transformers.ConvBertConfig(**config["hf"], num_labels=NUM_CLASSES)
    model = transformers.ConvBertForSequenceClassification(hf_config)
    run = torch.compile(model) if compiled else model
    ids = torch.as_tensor(x["token_ids"], dtype=torch.long)
    segments = torch.as_tensor(x["segment_ids"], dtype=torch.long)
    mask = torch.as_tensor(x["padding_mask"], dtype=torch.long)
    labels = torch.as_tensor(y, dtype=torch.long)
    if mode == "train":
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step():
            optimizer.zero_grad(set_to_none=True)
            loss = run(
                input_ids=ids, token_type_ids=segments, attention_mask=mask, labels=labels
            ).loss
            loss.backward()
            optimizer.step()

        return _timed_steps(step, warmup, repeats)
    model.eval()

    def infer():
        with torch.no_grad():
            run(input_ids=ids, token_type_ids=segments, attention_mask=mask)

    return _timed_steps(infer, warmup, repeats)


def _matmul_runner(backend, a, b):
    """A function that computes `a @ b` (NumPy float32) to completion with
    the backend's compiler (XLA through TensorFlow or jax.jit; PyTorch's
    eager kernels)."""
    if backend == "jax":
        import jax

        matmul = jax.jit(lambda a, b: a @ b)
        a, b = jax.device_put(a), jax.device_put(b)
        return lambda: matmul(a, b).block_until_ready()
    if backend == "torch":
        import torch

        a, b = torch.from_numpy(a), torch.from_numpy(b)
        return lambda: torch.matmul(a, b)
    import tensorflow as tf

    matmul = tf.function(lambda a, b: tf.matmul(a, b), jit_compile=True)
    a, b = tf.constant(a), tf.constant(b)
    return lambda: matmul(a, b).numpy()


def _matmul_worker(backend, warmup, repeats):
    """Best GFLOP/s of large float32 matrix products on `backend`."""
    import numpy as np

    rng = np.random.default_rng(0)
    best = 0.0
    for m, k, n in ((2048, 1024, 256), (4096, 1024, 1024), (2048, 2048, 2048)):
        a = rng.standard_normal((m, k), dtype="float32")
        b = rng.standard_normal((k, n), dtype="float32")
        seconds = _median_seconds(_matmul_runner(backend, a, b), warmup, repeats)
        best = max(best, 2 * m * k * n / seconds / 1e9)
    return best


def worker_main(spec):
    """Runs one measurement described by `spec`; returns a result dict."""
    warmup, repeats = spec["warmup"], spec["repeats"]
    if spec["framework"] == "matmul":
        return {"gflops": _matmul_worker(spec.get("backend", "tensorflow"), warmup, repeats)}
    config = spec["config"]
    extra = {}
    if spec["framework"] in ("torch", "torch_compiled"):
        compiled = spec["framework"] == "torch_compiled"
        first, seconds = _torch_worker(
            config, spec["batch_size"], spec["length"], spec["mode"], warmup, repeats, compiled
        )
        if compiled:
            extra["compile_seconds"] = max(0.0, first - seconds)
    else:
        seconds = _keras_worker(
            spec["framework"],
            config,
            spec["batch_size"],
            spec["length"],
            spec["mode"],
            warmup,
            repeats,
        )
    return {
        "seconds": seconds,
        "peak_memory_mb": _peak_memory_mb(),
        # ru_maxrss (KiB on Linux) is never reset: it includes compilation.
        "peak_memory_with_warmup_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        **extra,
    }


if __name__ == "__main__":
    print(json.dumps(worker_main(json.loads(sys.argv[1]))))
