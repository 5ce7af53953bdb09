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

from convbert_keras._compat import masked_lm_head_parts

# Buffers that some transformers versions save beside the weights.
_IGNORED = (
    "embeddings.position_ids",
    "embeddings.token_type_ids",
)

_WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"
# The masked LM decoder: the word embeddings again when tied.
_DECODER = "generator_lm_head.weight"


def _transpose(array):
    return array.T


def _linear(array):
    # (out, in) in PyTorch; GroupedLinear weights (G, in/G, out/G) already
    # match GroupedDense.
    return array.T if array.ndim == 2 else array


def _depthwise(array):
    return array[:, 0, :].T  # (H, 1, K) -> (K, H)


def _pointwise(array):
    return array[:, :, 0].T  # (A, H, 1) -> a Dense kernel (H, A)


def _flatten(array):
    return array.reshape(-1)


def _copy(array):
    return array


def _dense_pairs(layer, prefix, kernel_fn=_transpose):
    return [
        (layer.kernel, f"{prefix}.weight", kernel_fn),
        (layer.bias, f"{prefix}.bias", _copy),
    ]


def _norm_pairs(layer, prefix):
    return [
        (layer.gamma, f"{prefix}.weight", _copy),
        (layer.beta, f"{prefix}.bias", _copy),
    ]


def backbone_weight_map(backbone):
    """Lists `(variable, hf_name, pytorch_to_keras)` for every weight."""
    pairs = [
        (backbone.token_embedding.embeddings, _WORD_EMBEDDINGS, _copy),
        (
            backbone.position_embedding.position_embeddings,
            "embeddings.position_embeddings.weight",
            _copy,
        ),
        (
            backbone.segment_embedding.embeddings,
            "embeddings.token_type_embeddings.weight",
            _copy,
        ),
        *_norm_pairs(backbone.embeddings_layer_norm, "embeddings.LayerNorm"),
    ]
    if backbone.embeddings_projection is not None:
        pairs += _dense_pairs(backbone.embeddings_projection, "embeddings_project")
    for i, layer in enumerate(backbone.transformer_layers):
        prefix = f"encoder.layer.{i}"
        attention = layer.attention
        self_prefix = f"{prefix}.attention.self"
        pairs += _dense_pairs(attention.query_dense, f"{self_prefix}.query")
        pairs += _dense_pairs(attention.key_dense, f"{self_prefix}.key")
        pairs += _dense_pairs(attention.value_dense, f"{self_prefix}.value")
        if attention.conv_type != "none":
            conv = attention.span_dynamic_conv
            if conv.conv_type == "span":
                key_prefix = f"{self_prefix}.key_conv_attn_layer"
                pairs += [
                    (conv.key_depthwise_kernel, f"{key_prefix}.depthwise.weight", _depthwise),
                    (conv.key_pointwise_dense.kernel, f"{key_prefix}.pointwise.weight", _pointwise),
                    (conv.key_pointwise_dense.bias, f"{key_prefix}.bias", _flatten),
                ]
            pairs += _dense_pairs(conv.kernel_dense, f"{self_prefix}.conv_kernel_layer")
            pairs += _dense_pairs(conv.conv_value_dense, f"{self_prefix}.conv_out_layer")
        pairs += _dense_pairs(attention.output_dense, f"{prefix}.attention.output.dense")
        pairs += _norm_pairs(layer.attention_layer_norm, f"{prefix}.attention.output.LayerNorm")
        pairs += _dense_pairs(
            layer.feedforward_intermediate_dense, f"{prefix}.intermediate.dense", _linear
        )
        pairs += _dense_pairs(layer.feedforward_output_dense, f"{prefix}.output.dense", _linear)
        pairs += _norm_pairs(layer.feedforward_layer_norm, f"{prefix}.output.LayerNorm")
    return pairs


def strip_model_prefix(state):
    """Drops the `convbert.` prefix of task models (`ConvBertForX`)."""
    if any(name.startswith("convbert.") for name in state):
        return {
            name[len("convbert.") :] if name.startswith("convbert.") else name: value
            for name, value in state.items()
        }
    return dict(state)


def head_weight_map(task):
    """`(variable, hf_name, pytorch_to_keras)` for a task model's head.

    Heads of transformers' `ConvBertForSequenceClassification`,
    `ConvBertForTokenClassification`, `ConvBertForQuestionAnswering` and
    `ConvBertForMaskedLM`.
    """
    from convbert_keras.models.masked_lm import ConvBertMaskedLM
    from convbert_keras.models.question_answerer import ConvBertQuestionAnswerer
    from convbert_keras.models.text_classifier import ConvBertTextClassifier
    from convbert_keras.models.token_classifier import ConvBertTokenClassifier

    if isinstance(task, ConvBertTextClassifier):
        return _dense_pairs(task.pooled_dense, "classifier.dense") + _dense_pairs(
            task.output_dense, "classifier.out_proj"
        )
    if isinstance(task, ConvBertTokenClassifier):
        return _dense_pairs(task.output_dense, "classifier")
    if isinstance(task, ConvBertQuestionAnswerer):
        return _dense_pairs(task.output_dense, "qa_outputs")
    if isinstance(task, ConvBertMaskedLM):
        dense, norm, bias = masked_lm_head_parts(task.masked_lm_head)
        pairs = [
            *_dense_pairs(dense, "generator_predictions.dense"),
            *_norm_pairs(norm, "generator_predictions.LayerNorm"),
            (bias, "generator_lm_head.bias", _copy),
        ]
        if not task.tie_word_embeddings:
            # (vocabulary, embedding) in both: a Linear's weight and a table.
            pairs.append((task.masked_lm_head.token_embedding.embeddings, _DECODER, _copy))
        return pairs
    raise ValueError(f"No checkpoint head mapping for {type(task).__name__}.")


def load_weights_into_backbone(backbone, state, source="checkpoint"):
    """Assigns a canonical (PyTorch-named, PyTorch-layout) state dict.

    Raises `ValueError` naming every missing weight and every shape that
    does not match; warns about weights the backbone has no place for
    (task heads, generator weights), which are left out.
    """
    state = _without_tied_decoder(strip_model_prefix(state))
    _assign(backbone_weight_map(backbone), state, source)


def load_weights_into_task(task, state, source="checkpoint"):
    """Like `load_weights_into_backbone`, for a task model and its head.

    A masked LM checkpoint whose decoder (`generator_lm_head.weight`) is
    not its word embeddings is refused by a `ConvBertMaskedLM` that ties
    them, naming both tensors: build the model untied to convert it.
    """
    from convbert_keras.models.masked_lm import ConvBertMaskedLM

    state = _without_tied_decoder(strip_model_prefix(state))
    if (
        isinstance(task, ConvBertMaskedLM)
        and task.tie_word_embeddings
        and _DECODER in state
        and _WORD_EMBEDDINGS in state
    ):
        decoder, embeddings = state[_DECODER], state[_WORD_EMBEDDINGS]
        if np.shape(decoder) == np.shape(embeddings):
            difference = f"by up to {np.abs(decoder - embeddings).max():.3g}"
        else:
            difference = f"in shape, {np.shape(decoder)} against {np.shape(embeddings)}"
        raise ValueError(
            f"{source} has an untied masked LM head: its decoder {_DECODER} "
            f"differs from {_WORD_EMBEDDINGS} {difference}, but this "
            "ConvBertMaskedLM ties its decoder to the word embeddings, which "
            "would drop the checkpoint's decoder. Build the model with "
            "`ConvBertMaskedLM(backbone, tie_word_embeddings=False)`; "
            "convert_checkpoint does so when the checkpoint's config.json "
            'has "tie_word_embeddings": false.'
        )
    pairs = backbone_weight_map(task.backbone) + head_weight_map(task)
    _assign(pairs, state, source)


def _without_tied_decoder(state):
    # A tied checkpoint may store its decoder as a copy of the word
    # embeddings (`pytorch_model.bin` does): nothing to load, or to warn of.
    decoder = state.get(_DECODER)
    embeddings = state.get(_WORD_EMBEDDINGS)
    if decoder is not None and embeddings is not None and np.array_equal(decoder, embeddings):
        return {name: value for name, value in state.items() if name != _DECODER}
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
