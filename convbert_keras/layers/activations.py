import math

import keras
from keras import ops

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def after(x, upstream):
    """`x`, made to depend on `upstream` (adds 0, or NaN where the first
    element of `upstream` is NaN).

    A value recomputed in a backward pass is the same expression as in the
    forward pass, so XLA's common-subexpression elimination merges the two
    and keeps the forward's result alive until the backward pass, the
    memory recomputation was meant to save. Computed from `after(x, dy)`,
    the recomputation cannot run before `dy` exists and is not merged
    (the device `tf.recompute_grad` uses under XLA).
    """
    first = ops.reshape(upstream, (-1,))[:1]
    dependency = ops.where(ops.isnan(first), ops.cast(float("nan"), x.dtype), 0)
    return x + ops.cast(dependency, x.dtype)


@ops.custom_gradient
def _gelu_exact(x):
    # Spelled `0.5 * x * (1 + erf)`, the form LiteRT's converter fuses into
    # its builtin GELU (`x * cdf` leaves an Erf, which has no builtin).
    output = 0.5 * x * (1.0 + ops.erf(x * ops.cast(_INV_SQRT2, x.dtype)))

    def grad(*args, upstream=None):
        if upstream is None:
            (upstream,) = args
        # Phi(x) and phi(x) recomputed from x: the input is all the backward
        # pass keeps, not the forward's erf as well.
        recomputed = after(x, upstream)
        cdf = 0.5 * (1.0 + ops.erf(recomputed * ops.cast(_INV_SQRT2, x.dtype)))
        pdf = ops.exp(-0.5 * ops.square(recomputed)) * ops.cast(_INV_SQRT_2PI, x.dtype)
        return upstream * (cdf + recomputed * pdf)

    return output, grad


@keras.saving.register_keras_serializable(package="convbert_keras")
def gelu_exact(x):
    """Exact GELU, `x * Phi(x)`, with an analytic gradient.

    The same values as `keras.activations.gelu(x, approximate=False)` (the
    references' "gelu"). The backward pass keeps only `x`: it computes
    `Phi(x) + x * phi(x)` again from it. TensorFlow's automatic gradient of
    Keras' form (`0.5 * x * erfc(-x / sqrt(2))`) keeps two more
    intermediates of every feed-forward layer (0.4 GB in a ConvBERT-small
    training step at batch 16 x 512), and reusing the forward's erf keeps
    one more (96 MB at batch 16 x 128, 15% of that step's XLA buffers).
    """
    if keras.config.backend() not in ("tensorflow", "jax"):
        return keras.activations.gelu(x, approximate=False)
    return _gelu_exact(x)
