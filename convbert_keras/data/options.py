"""`tf.data` options of the input pipelines this package builds."""


def pipeline_options():
    """Options for our `tf.data` pipelines: a fixed element order and no
    autotuning.

    A fixed order (`deterministic`) gives a resumed run the batches an
    uninterrupted one would see. Autotuning is off because, in TensorFlow
    2.21, destroying an iterator whose autotuning thread has started can
    wait for that thread's timed sleep (a period that doubles up to a
    minute) to run out, with the process idle meanwhile: seconds at the end
    of a `fit`, `evaluate` or `predict` (under gdb, the iterator's
    destructor waits on the thread, which waits in `Model::OptimizeLoop`).
    Our pipelines have little to tune: one parallel map (the tokenizer,
    which still runs calls in parallel: 20,000 snippets tokenised in the
    same time with and without autotuning) and a prefetch (which sizes its
    buffer without it). `test_real_data.py`'s sentiment and tagger tests:
    50-54 s instead of 57-63 s, for the same CPU time.

    Example:

    >>> import tensorflow as tf
    >>> dataset = tf.data.Dataset.range(4).with_options(pipeline_options())
    >>> dataset.options().autotune.enabled
    False
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.deterministic = True
    options.autotune.enabled = False
    return options
