"""TF Serving's model layout: versions, models.config, warmup requests."""

import os
import re
import shutil

from convbert_keras.export.saved_model import export_saved_model

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
BATCHING_FILE = "batching_parameters.txt"
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def next_version(model_dir):
    """1 + the highest numeric version folder in `model_dir` (1 if none)."""
    versions = (
        [int(d) for d in os.listdir(model_dir) if d.isdigit()] if os.path.isdir(model_dir) else []
    )
    return max(versions, default=0) + 1


def write_models_config(base_dir, container_base="/models"):
    """`models.config` listing every model folder of `base_dir`, with the
    paths the official container mounts them at (`container_base`)."""
    names = sorted(
        d
        for d in os.listdir(base_dir)
        if os.path.isdir(os.path.join(base_dir, d))
        and any(v.isdigit() for v in os.listdir(os.path.join(base_dir, d)))
    )
    entries = "".join(
        f"  config {{\n    name: '{n}'\n    base_path: '{container_base}/{n}'\n"
        f"    model_platform: 'tensorflow'\n  }}\n"
        for n in names
    )
    path = os.path.join(base_dir, "models.config")
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"model_config_list {{\n{entries}}}\n")
    return path


def write_batching_parameters(
    base_dir, max_batch_size=32, batch_timeout_micros=2000, num_batch_threads=None
):
    """`<base_dir>/batching_parameters.txt` for TF Serving's server-side
    batching (`--enable_batching --batching_parameters_file=...`): requests
    merged into batches of up to `max_batch_size` within
    `batch_timeout_micros`, padded up to the next of the allowed sizes
    (powers of two), so the model runs a few shapes only.

    `pad_variable_length_inputs` stays off: TF Serving pads with each
    tensor's first value, which for `predict_token_ids` would append
    `[CLS]` tokens with a padding mask of 1. The string signatures take
    `[batch]` inputs and need no padding; clients of `predict_token_ids`
    send one fixed length (the preprocessor's `sequence_length`) to be
    batched together.
    """
    if max_batch_size < 1:
        raise ValueError(f"`max_batch_size` must be positive. Received: {max_batch_size}")
    sizes = []
    size = 1
    while size < max_batch_size:
        sizes.append(size)
        size *= 2
    sizes.append(max_batch_size)
    threads = num_batch_threads or os.cpu_count() or 1
    lines = [
        f"max_batch_size {{ value: {max_batch_size} }}",
        f"batch_timeout_micros {{ value: {batch_timeout_micros} }}",
        "max_enqueued_batches { value: 100 }",
        f"num_batch_threads {{ value: {threads} }}",
        *(f"allowed_batch_sizes: {s}" for s in sizes),
        "pad_variable_length_inputs: false",
    ]
    path = os.path.join(base_dir, BATCHING_FILE)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def write_warmup_requests(version_dir, model_name, requests):
    """TF Serving warmup records: one `PredictionLog` per
    `(signature_name, {input: list of strings})`."""
    import tensorflow as tf
    from tensorflow_serving.apis import model_pb2
    from tensorflow_serving.apis import predict_pb2
    from tensorflow_serving.apis import prediction_log_pb2

    path = os.path.join(version_dir, WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for signature, inputs in requests:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature)
            )
            for key, values in inputs.items():
                request.inputs[key].CopyFrom(tf.make_tensor_proto(values, dtype=tf.string))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())
    return path


def export_for_tf_serving(
    task,
    model_name,
    base_dir="saved_models",
    version=None,
    label_names=None,
    warmup_requests=None,
    log=None,
    **export_kwargs,
):
    """Exports `task` to `<base_dir>/<model_name>/<version>/` for TF Serving.

    The version defaults to one above the highest present, so the model
    server picks up the new model and keeps serving the old one until it
    has loaded. The SavedModel is written under a temporary name and
    renamed, so the server never sees a half-written version. Adds warmup
    requests (`assets.extra/tf_serving_warmup_requests`), rewrites
    `<base_dir>/models.config` and writes `<base_dir>/batching_parameters.txt`
    (`write_batching_parameters`) if there is none. Returns the version
    directory. `log` is told each stage, as `export_saved_model`'s.
    """
    if not _NAME.match(model_name):
        raise ValueError(
            f"Model name {model_name!r} may only hold letters, digits, '_', '.' and '-'."
        )
    model_dir = os.path.join(base_dir, model_name)
    os.makedirs(model_dir, exist_ok=True)
    version = next_version(model_dir) if version is None else int(version)
    final = os.path.join(model_dir, str(version))
    if os.path.exists(final):
        raise ValueError(f"{final} exists; versions are never overwritten, pick a new one.")
    staging = os.path.join(model_dir, f".partial-{version}")
    shutil.rmtree(staging, ignore_errors=True)
    export_saved_model(task, staging, label_names=label_names, log=log, **export_kwargs)
    if log is not None:
        log(f"export: warmup requests, then {final}")
    write_warmup_requests(staging, model_name, warmup_requests or task.warmup_requests())
    os.replace(staging, final)
    write_models_config(base_dir)
    if not os.path.exists(os.path.join(base_dir, BATCHING_FILE)):
        # The user's tuned file is kept.
        write_batching_parameters(base_dir)
    return final
