"""Task models to SavedModels whose signatures take raw strings."""

import keras


def _string_spec(name):
    import tensorflow as tf

    return tf.TensorSpec([None], tf.string, name=name)


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


def _classifier_signatures(task, label_names):
    import tensorflow as tf

    def outputs(inputs):
        logits = tf.cast(task(inputs, training=False), "float32")
        if task.num_classes == 1:
            return {"score": logits[:, 0]}
        probabilities = tf.nn.softmax(logits)
        label = tf.argmax(probabilities, axis=-1)
        result = {"probabilities": probabilities, "label": label}
        if label_names:
            result["label_name"] = tf.gather(tf.constant(label_names), label)
        return result

    def classify(text):
        return outputs(task.preprocessor(text))

    def classify_pair(text_a, text_b):
        return outputs(task.preprocessor(x=(text_a, text_b)))

    return {
        "serving_default": (classify, [_string_spec("text")]),
        "classify_pair": (classify_pair, [_string_spec("text_a"), _string_spec("text_b")]),
    }


def _token_classifier_signatures(task, label_names):
    import tensorflow as tf

    def tag(text):
        # Words are the text split on white space, as `predict_words` takes.
        words = tf.strings.split(text)
        logits = task(task.preprocessor(words), training=False)
        first = task.preprocessor.first_piece_mask(words)
        tags = tf.ragged.boolean_mask(tf.argmax(logits, axis=-1), first)
        padded_words = words.to_tensor("")
        width = tf.shape(padded_words, out_type="int64")[1]
        tags = tags.to_tensor(-1)
        tags = tf.pad(
            tags, [[0, 0], [0, width - tf.shape(tags, out_type="int64")[1]]], constant_values=-1
        )
        result = {"words": padded_words, "tags": tags, "num_words": words.row_lengths()}
        if label_names:
            names = tf.concat([tf.constant(label_names), [""]], axis=0)
            result["tag_names"] = tf.gather(
                names, tf.where(tags < 0, tf.cast(len(label_names), tags.dtype), tags)
            )
        return result

    return {"serving_default": (tag, [_string_spec("text")])}


def _question_answerer_signatures(task, max_answer_length, allow_no_answer):
    import tensorflow as tf

    from convbert_keras.models.question_answerer import best_spans

    def answer(question, context):
        features = task.preprocessor.windows(question, context)
        inputs = {k: features[k] for k in ("token_ids", "segment_ids", "padding_mask")}
        logits = task(inputs, training=False)
        begin, end, score = best_spans(
            logits,
            features["example_index"],
            features["window_start"],
            features["offsets_begin"],
            features["offsets_end"],
            tf.size(question, out_type="int64"),
            max_answer_length=max_answer_length,
            allow_no_answer=allow_no_answer,
        )
        contexts = features["contexts"]
        found = begin >= 0
        safe_begin, safe_end = tf.maximum(begin, 0), tf.maximum(end, 0)
        text = tf.strings.substr(contexts, safe_begin, safe_end - safe_begin, unit="BYTE")
        start = tf.strings.length(
            tf.strings.substr(contexts, tf.zeros_like(safe_begin), safe_begin, unit="BYTE"),
            unit="UTF8_CHAR",
        )
        return {
            "answer": tf.where(found, text, ""),
            "score": score,
            "start": tf.where(found, tf.cast(start, "int64"), -1),
            "end": tf.where(
                found, tf.cast(start + tf.strings.length(text, unit="UTF8_CHAR"), "int64"), -1
            ),
        }

    return {"serving_default": (answer, [_string_spec("question"), _string_spec("context")])}


def serving_signatures(task, label_names=None, max_answer_length=30, allow_no_answer=False):
    """`{name: (function, input specs)}` for a task model."""
    from convbert_keras.models.question_answerer import ConvBertQuestionAnswerer
    from convbert_keras.models.text_classifier import ConvBertTextClassifier
    from convbert_keras.models.token_classifier import ConvBertTokenClassifier

    if task.preprocessor is None:
        raise ValueError("Exporting raw-string signatures needs a task with a preprocessor.")
    if isinstance(task, ConvBertTextClassifier):
        if label_names and len(label_names) != task.num_classes:
            raise ValueError(
                f"{len(label_names)} label names for {task.num_classes} classes; "
                "give one name per class, in id order."
            )
        signatures = _classifier_signatures(task, label_names)
    elif isinstance(task, ConvBertTokenClassifier):
        signatures = _token_classifier_signatures(task, label_names)
    elif isinstance(task, ConvBertQuestionAnswerer):
        signatures = _question_answerer_signatures(task, max_answer_length, allow_no_answer)
    else:
        raise ValueError(
            f"No serving signatures for {type(task).__name__}; export a "
            "ConvBertTextClassifier, ConvBertTokenClassifier or ConvBertQuestionAnswerer."
        )
    signatures["predict_token_ids"] = _token_id_signature(task)
    return signatures


def export_saved_model(task, path, label_names=None, max_answer_length=30, allow_no_answer=False):
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
    not Keras.
    """
    archive = keras.export.ExportArchive()
    archive.track(task)
    for name, (fn, specs) in serving_signatures(
        task, label_names, max_answer_length, allow_no_answer
    ).items():
        archive.add_endpoint(name, fn, input_signature=specs)
    archive.write_out(str(path), verbose=False)
    return str(path)
