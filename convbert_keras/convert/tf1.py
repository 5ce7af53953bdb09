"""Reads checkpoints of the original ConvBERT code (TensorFlow 1.15).

The discriminator lives under `electra/` (`electra/encoder/layer_3/
attention/self/conv_attn_key/depthwise_kernel`, ...) in Keras layout,
grouped kernels as `(G, in/G, out/G)`. Generator, head and optimizer
variables are not part of the backbone.
"""

import os
import warnings

from convbert_keras.convert.weights import tf_layout_to_torch
from convbert_keras.convert.weights import tf_name_to_hf

_OPTIMIZER_MARKERS = ("adam_m", "adam_v", "global_step", "/Adam", "beta1_power", "beta2_power")


def read_tf1_checkpoint(path):
    """Returns the canonical state dict of a TF1 checkpoint prefix or folder.

    Warns about non-optimizer variables outside the discriminator, which are
    left out.
    """
    import tensorflow as tf

    prefix = tf.train.latest_checkpoint(path) if os.path.isdir(path) else path
    if prefix is None:
        raise FileNotFoundError(f"No TensorFlow checkpoint found in {path}.")
    try:
        reader = tf.train.load_checkpoint(prefix)
        names = reader.get_variable_to_shape_map()
    except (tf.errors.OpError, ValueError) as error:
        raise ValueError(f"Could not read a TensorFlow checkpoint at {prefix}: {error}") from None
    state, extra = {}, []
    for name in names:
        if any(marker in name for marker in _OPTIMIZER_MARKERS):
            continue
        hf_name = tf_name_to_hf(name) if name.startswith("electra/") else None
        if hf_name is None:
            extra.append(name)
            continue
        state[hf_name] = tf_layout_to_torch(hf_name, reader.get_tensor(name), "keras")
    if not state:
        raise ValueError(
            f"{prefix} has no `electra/...` discriminator variables; is it a "
            "checkpoint of the original ConvBERT code?"
        )
    if extra:
        extra.sort()
        warnings.warn(
            f"{prefix}: {len(extra)} variable(s) outside the discriminator "
            f"left out: {', '.join(extra[:8])}{' ...' if len(extra) > 8 else ''}",
            stacklevel=2,
        )
    return state
