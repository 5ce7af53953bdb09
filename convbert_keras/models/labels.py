"""Label checks shared by the tasks: a wrong label fails with its value."""


def check_label_range(y, num_classes):
    """Returns `y` with an assertion that every label is in [0, num_classes).

    Works on dense and ragged tensors, eagerly and inside `tf.data`.
    """
    import tensorflow as tf

    values = y.flat_values if isinstance(y, tf.RaggedTensor) else tf.convert_to_tensor(y)
    if values.dtype.is_floating:
        return y  # regression targets
    if isinstance(num_classes, int):
        bound = f"[0, {num_classes}) (num_classes={num_classes})"
    else:
        bound = "[0, number of choices)"
    message = (
        f"Labels must be integers in {bound}; found an out-of-range label. "
        "Check the label mapping, or the model's num_classes."
    )
    checks = [
        tf.debugging.assert_non_negative(values, message=message),
        tf.debugging.assert_less(values, tf.cast(num_classes, values.dtype), message=message),
    ]
    with tf.control_dependencies(checks):
        if isinstance(y, tf.RaggedTensor):
            return y.with_flat_values(tf.identity(y.flat_values))
        return tf.identity(values)
