"""Task models to SavedModels whose signatures take raw strings."""

import time

import keras


def _token_id_signature(task):
    import tensorflow as tf

    specs = [
        tf.TensorSpec([None, None], tf.int32, name=n)
        for n in ("token_ids", "segment_ids", "padding_mask")
    ]

    def predict_token_ids(token_ids, segment_ids, padding_mask):
        inputs = {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask}
        return {"logits": tf.cast(task(inputs, training=False), "float32")}

    return predict_token_ids, specs


def check_task(task):
    """Refuses, by name, a model that is not a ConvBERT task (a backbone,
    another family's task): only tasks declare what to export."""
    from convbert_keras.models.convbert_task import ConvBertTask

    if not isinstance(task, ConvBertTask):
        raise ValueError(f"{type(task).__name__} is not a ConvBERT task model.")


def serving_signatures(task, label_names=None, max_answer_length=30, allow_no_answer=False):
    """`{name: (function, input specs)}` for a task model: the raw-string
    signatures it declares (`ConvBertTask.serving_signatures`) and
    `predict_token_ids`."""
    check_task(task)
    if task.preprocessor is None:
        raise ValueError("Exporting raw-string signatures needs a task with a preprocessor.")
    signatures = task.serving_signatures(
        label_names=label_names,
        max_answer_length=max_answer_length,
        allow_no_answer=allow_no_answer,
    )
    signatures["predict_token_ids"] = _token_id_signature(task)
    return signatures


def export_saved_model(
    task, path, label_names=None, max_answer_length=30, allow_no_answer=False, log=None
):
    """Writes `task` as a SavedModel with tokenization inside the graph.

    Signatures: `serving_default` on raw strings (classifier: `text` ->
    `probabilities`, `label`[, `label_name`], or `score` for a regressor,
    and `classify_pair` on `text_a`, `text_b`; token classifier: `text`
    -> `words`, `tags` (-1 padding)[, `tag_names`], `num_words`; question
    answerer: `question`, `context` -> `answer`, `score`, `start`, `end`
    (character offsets, -1 for no answer)), and `predict_token_ids` on
    `token_ids`, `segment_ids`, `padding_mask` -> `logits` for clients that
    tokenize themselves. Nothing is XLA-compiled (TF Serving does not JIT).
    Loading needs TensorFlow and the tf-text ops (`import tensorflow_text`),
    not Keras. `log`, a function of one line, is told each stage (tracing
    each signature, writing) as it starts, with the seconds spent so far.
    """
    started = time.perf_counter()
    signatures = serving_signatures(task, label_names, max_answer_length, allow_no_answer)
    stages = len(signatures) + 1

    def stage(number, what):
        if log is not None:
            log(f"export {number}/{stages}: {what} ({time.perf_counter() - started:.0f} s)")

    archive = keras.export.ExportArchive()
    archive.track(task)
    for number, (name, (fn, specs)) in enumerate(signatures.items(), 1):
        stage(number, f"tracing the {name} signature")
        archive.add_endpoint(name, fn, input_signature=specs)
    stage(stages, "writing the SavedModel")
    archive.write_out(str(path), verbose=False)
    return str(path)
