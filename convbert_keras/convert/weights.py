"""Maps Hugging Face ConvBERT weights onto a `ConvBertBackbone`.

Every reader in this package produces one canonical form: a dict from the
names of transformers' PyTorch `ConvBertModel` (`encoder.layer.0.attention.
self.query.weight`, ...) to NumPy arrays in PyTorch layout. This module
checks that dict against the backbone (missing, unexpected and misshapen
weights, each named) and assigns it.
"""

import re
import warnings

import numpy as np

from convbert_keras.models.hf_weights import DECODER
from convbert_keras.models.hf_weights import WORD_EMBEDDINGS
from convbert_keras.models.hf_weights import backbone_weight_map

# Buffers that some transformers versions save beside the weights.
_IGNORED = (
    "embeddings.position_ids",
    "embeddings.token_type_ids",
)


def strip_model_prefix(state):
    """Drops the `convbert.` prefix of task models (`ConvBertForX`)."""
    if any(name.startswith("convbert.") for name in state):
        return {
            name[len("convbert.") :] if name.startswith("convbert.") else name: value
            for name, value in state.items()
        }
    return dict(state)


def load_weights_into_backbone(backbone, state, source="checkpoint"):
    """Assigns a canonical (PyTorch-named, PyTorch-layout) state dict.

    Raises `ValueError` naming every missing weight and every shape that
    does not match; warns about weights the backbone has no place for
    (task heads, generator weights), which are left out.
    """
    state = _without_tied_decoder(strip_model_prefix(state))
    _assign(backbone_weight_map(backbone), state, source)


def load_weights_into_task(task, state, source="checkpoint"):
    """Like `load_weights_into_backbone`, for a task model and the head
    its `hf_head_weights` maps; the task's `check_hf_weights` first refuses
    checkpoint weights that it would drop."""
    state = _without_tied_decoder(strip_model_prefix(state))
    task.check_hf_weights(state, source)
    pairs = backbone_weight_map(task.backbone) + task.hf_head_weights()
    _assign(pairs, state, source)


def _without_tied_decoder(state):
    # A tied checkpoint may store its decoder as a copy of the word
    # embeddings (`pytorch_model.bin` does): nothing to load, or to warn of.
    decoder = state.get(DECODER)
    embeddings = state.get(WORD_EMBEDDINGS)
    if decoder is not None and embeddings is not None and np.array_equal(decoder, embeddings):
        return {name: value for name, value in state.items() if name != DECODER}
    return state


def _assign(pairs, state, source):
    expected = {name for _, name, _ in pairs}
    missing = sorted(expected - set(state))
    if missing:
        shown = ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else "")
        raise ValueError(
            f"{source} is missing {len(missing)} weight(s) the model needs: "
            f"{shown}. Check that the checkpoint is a ConvBERT with the "
            "configuration given (number of layers, embedding size, groups)."
        )
    extra = sorted(name for name in set(state) - expected if name not in _IGNORED)
    if extra:
        shown = ", ".join(extra[:8]) + (" ..." if len(extra) > 8 else "")
        warnings.warn(
            f"{source} has {len(extra)} weight(s) the model does not use, left out: {shown}",
            stacklevel=2,
        )
    errors = []
    converted = []
    for variable, name, fn in pairs:
        value = fn(np.asarray(state[name]))
        if tuple(value.shape) != tuple(variable.shape):
            errors.append(
                f"{name}: checkpoint shape {tuple(np.shape(state[name]))} "
                f"gives {tuple(value.shape)}, the model expects "
                f"{tuple(variable.shape)}"
            )
        converted.append((variable, value))
    if errors:
        raise ValueError(
            f"{source} does not match the model configuration:\n  " + "\n  ".join(errors)
        )
    for variable, value in converted:
        variable.assign(value.astype(variable.dtype))


_TF_RENAMES = [
    (r"layer_\._(\d+)", r"layer.\1"),  # transformers' TF2 port
    (r"layer_(\d+)", r"layer.\1"),  # the original TF1 code
    (r"conv_attn_key", "key_conv_attn_layer"),
    (r"conv_attn_kernel", "conv_kernel_layer"),
    (r"conv_attn_point", "conv_out_layer"),
    (r"g_dense", "dense"),
    (r"depthwise_kernel$", "depthwise/weight"),
    (r"pointwise_kernel$", "pointwise/weight"),
    (r"(word|position|token_type)_embeddings(/weight|/embeddings)?$", r"\1_embeddings/weight"),
    (r"/(kernel|gamma)$", "/weight"),
    (r"/beta$", "/bias"),
]


def tf_name_to_hf(name):
    """Translates a TF variable name into the canonical PyTorch name.

    Accepts the original code's names (`electra/encoder/layer_3/attention/
    self/conv_attn_key/depthwise_kernel`) and those of transformers' TF2 port
    (`convbert/encoder/layer_._3/.../key_conv_attn_layer/depthwise_kernel:0`).
    Returns `None` for variables outside the encoder (heads, optimizer).
    """
    name = name.split(":")[0]
    parts = name.split("/")
    start = next(
        (
            i
            for i, part in enumerate(parts)
            if part in ("embeddings", "embeddings_project", "encoder")
        ),
        None,
    )
    if start is None:
        return None
    name = "/".join(parts[start:])
    for pattern, replacement in _TF_RENAMES:
        name = re.sub(pattern, replacement, name)
    return name.replace("/", ".")


def tf_layout_to_torch(hf_name, array, grouped_layout):
    """Converts a Keras-layout TF array to the PyTorch layout.

    `grouped_layout` names how grouped FFN kernels are stored: `"keras"` as
    `(G, in/G, out/G)` (original TF1 code) or `"hf_tf"` as
    `(out/G, in/G, G)` (transformers' TF2 port).
    """
    if hf_name.endswith("depthwise.weight"):
        return np.transpose(array, (1, 2, 0))
    if hf_name.endswith("pointwise.weight"):
        return np.transpose(array, (2, 1, 0))
    if hf_name.endswith("key_conv_attn_layer.bias"):
        return array.reshape(-1, 1)
    if array.ndim == 3 and grouped_layout == "hf_tf":
        return np.transpose(array, (2, 1, 0))
    if array.ndim == 2 and not hf_name.endswith("_embeddings.weight"):
        return array.T  # a dense kernel; embedding tables keep their layout
    return array
