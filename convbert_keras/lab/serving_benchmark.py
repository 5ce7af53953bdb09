"""Latency and throughput of an export as TF Serving runs it.

TF Serving loads a SavedModel into a TensorFlow session (`SavedModelBundle`)
and runs a signature's feeds and fetches, without Keras or tf.function. This
measures the same path from Python: `tf.compat.v1.saved_model.loader.load`
into a session, then `session.run` on the signature's tensors.
"""

import time

import numpy as np


def load_signature(version_dir, signature_name="serving_default"):
    """`(session, feeds, fetches)`: the export loaded as the model server
    loads it; `feeds` maps input names to tensor names, `fetches` output
    names to tensor names."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tf-text ops the graph uses)

    graph = tf.Graph()
    session = tf.compat.v1.Session(graph=graph)
    with graph.as_default():
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], version_dir)
    if signature_name not in meta_graph.signature_def:
        session.close()
        raise ValueError(
            f"{version_dir} has no signature {signature_name!r}; it has "
            f"{sorted(meta_graph.signature_def)}."
        )
    signature = meta_graph.signature_def[signature_name]
    feeds = {name: info.name for name, info in signature.inputs.items()}
    fetches = {name: info.name for name, info in signature.outputs.items()}
    return session, feeds, fetches


def measure_serving(
    version_dir,
    texts,
    signature_name="serving_default",
    input_name="text",
    requests=200,
    batch_size=32,
    batches=20,
):
    """Times `signature_name` of the export at `version_dir` on `texts`.

    Latency: `requests` single-text requests, one after another (texts in
    turn); throughput: `batches` requests of `batch_size` texts. Each kind
    is warmed up first (the first run of a shape builds its kernels).
    Returns `{"load_s", "p50_ms", "p99_ms", "mean_ms", "requests",
    "batch_size", "texts_per_s"}`.
    """
    if not texts:
        raise ValueError("Give at least one text to send.")
    start = time.perf_counter()
    session, feeds, fetches = load_signature(version_dir, signature_name)
    load_s = time.perf_counter() - start
    try:
        if input_name not in feeds:
            raise ValueError(
                f"Signature {signature_name!r} takes {sorted(feeds)}, not {input_name!r}; "
                "name the text input."
            )
        feed = feeds[input_name]

        def run(batch):
            session.run(fetches, {feed: batch})

        texts = list(texts)
        run(texts[:1])
        run([texts[i % len(texts)] for i in range(batch_size)])
        latencies = []
        for i in range(requests):
            begin = time.perf_counter()
            run([texts[i % len(texts)]])
            latencies.append(time.perf_counter() - begin)
        begin = time.perf_counter()
        for i in range(batches):
            run([texts[(i * batch_size + j) % len(texts)] for j in range(batch_size)])
        elapsed = time.perf_counter() - begin
    finally:
        session.close()
    p50, p99 = np.percentile(np.array(latencies) * 1000, [50, 99])
    return {
        "load_s": round(load_s, 2),
        "p50_ms": round(float(p50), 2),
        "p99_ms": round(float(p99), 2),
        "mean_ms": round(float(np.mean(latencies) * 1000), 2),
        "requests": requests,
        "batch_size": batch_size,
        "texts_per_s": round(batches * batch_size / elapsed, 1),
    }
