"""LiteRT (TensorFlow Lite) export of a task's token-id signature."""

import tempfile


def export_litert(task, path, sequence_length=None, batch_size=1):
    """Writes `task`'s `predict_token_ids` as a LiteRT flatbuffer at `path`.

    The model takes `token_ids`, `segment_ids` and `padding_mask`, int32
    `(batch_size, sequence_length)`, and returns `logits` (float32), as the
    SavedModel's `predict_token_ids` does; every op is a LiteRT builtin, so
    the stock interpreter runs it (no Flex delegate). Shapes are fixed:
    on-device runtimes plan memory once.

    The raw-string signatures stay in the SavedModel: their tokenizer
    (tf-text's normalisation, splitting and word-piece lookup) has no
    builtin ops. On a device, tokenize in the app with the same
    `vocab.txt` (the tokenizer's `save_assets`), pad to `sequence_length`
    and pass the ids; `task.preprocessor` gives the expected ids for a
    check.

    Args:
        task: a ConvBERT task model.
        path: the `.tflite` file to write.
        sequence_length: default the preprocessor's.
        batch_size: examples per call.

    Returns: `path`.

    Example:

    ```python
    classifier = ConvBertTextClassifier.from_preset("preset_dir", num_classes=2)
    export_litert(classifier, "sentiment.tflite")
    runner = tf.lite.Interpreter("sentiment.tflite").get_signature_runner()
    ids = classifier.preprocessor(["A gripping film."])
    logits = runner(**{k: np.asarray(v, "int32") for k, v in ids.items()})["logits"]
    ```
    """
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    from convbert_keras.export.saved_model import _token_id_signature
    from convbert_keras.export.saved_model import check_task
    from convbert_keras.files import write_bytes

    check_task(task)
    if sequence_length is None:
        if task.preprocessor is None:
            raise ValueError(
                "The task has no preprocessor to take the length from: pass `sequence_length`."
            )
        sequence_length = task.preprocessor.sequence_length
    longest = task.backbone.max_sequence_length
    if not 1 <= sequence_length <= longest:
        raise ValueError(
            f"`sequence_length` must be between 1 and the model's {longest} positions. "
            f"Received: {sequence_length}"
        )
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be positive. Received: {batch_size}")
    function, specs = _token_id_signature(task)
    fixed = [tf.TensorSpec([batch_size, sequence_length], s.dtype, name=s.name) for s in specs]
    concrete = tf.function(function, input_signature=fixed).get_concrete_function()
    # Weights frozen into constants first: converted as resource variables
    # (the converter's route for a function with a model), nothing
    # initialises them in the interpreter and every logit is NaN. Saved as
    # a SavedModel of that one signature, so the flatbuffer keeps its name.
    frozen = convert_variables_to_constants_v2(concrete)

    @tf.function(input_signature=fixed)
    def predict_token_ids(token_ids, segment_ids, padding_mask):
        # Freezing keeps the outputs, not their name.
        (logits,) = frozen(token_ids, segment_ids, padding_mask)
        return {"logits": logits}

    with tempfile.TemporaryDirectory() as staging:
        tf.saved_model.save(
            tf.Module(),
            staging,
            signatures={"predict_token_ids": predict_token_ids},
            # Inference only: GELU's training gradient is not needed.
            options=tf.saved_model.SaveOptions(experimental_custom_gradients=False),
        )
        converter = tf.lite.TFLiteConverter.from_saved_model(staging, ["predict_token_ids"])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        flatbuffer = converter.convert()
    write_bytes(path, flatbuffer)
    return str(path)
