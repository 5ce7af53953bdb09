"""Running preprocessing code as TensorFlow graphs."""


def run_in_graph(fn, *args):
    """Calls `fn(*args)` traced when eager, directly inside a graph.

    keras-hub tokenizers take a pure-Python path when called eagerly and a
    tf-text path only while tracing; preprocessing built on ragged tensors
    needs the latter, also for eager convenience calls.
    """
    import tensorflow as tf

    if tf.executing_eagerly():
        return tf.function(fn)(*args)
    return fn(*args)
