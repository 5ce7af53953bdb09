import keras


def clone_initializer(initializer):
    """Returns a fresh copy, so layers sharing a config never share a seed."""
    initializer = keras.initializers.get(initializer)
    return initializer.__class__.from_config(initializer.get_config())


def convbert_kernel_initializer(stddev=0.02):
    """The references' initializer: truncated normal, stddev 0.02."""
    return keras.initializers.TruncatedNormal(stddev=stddev)
