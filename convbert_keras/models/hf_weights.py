"""Where each transformers ConvBERT weight lives in our models.

transformers' PyTorch names (`encoder.layer.0.attention.self.query.weight`)
are the canonical names every checkpoint reader in `convbert_keras.convert`
produces. The backbone's map is here, beside the models, and each task adds
the map of its own head (`hf_head_weights`), so the models never import
the converters.
"""

WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"
# The masked LM decoder: the word embeddings again when tied.
DECODER = "generator_lm_head.weight"


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


def copy_array(array):
    return array


def dense_pairs(layer, prefix, kernel_fn=_transpose):
    return [
        (layer.kernel, f"{prefix}.weight", kernel_fn),
        (layer.bias, f"{prefix}.bias", copy_array),
    ]


def norm_pairs(layer, prefix):
    return [
        (layer.gamma, f"{prefix}.weight", copy_array),
        (layer.beta, f"{prefix}.bias", copy_array),
    ]


def backbone_weight_map(backbone):
    """Lists `(variable, hf_name, pytorch_to_keras)` for every weight."""
    pairs = [
        (backbone.token_embedding.embeddings, WORD_EMBEDDINGS, copy_array),
        (
            backbone.position_embedding.position_embeddings,
            "embeddings.position_embeddings.weight",
            copy_array,
        ),
        (
            backbone.segment_embedding.embeddings,
            "embeddings.token_type_embeddings.weight",
            copy_array,
        ),
        *norm_pairs(backbone.embeddings_layer_norm, "embeddings.LayerNorm"),
    ]
    if backbone.embeddings_projection is not None:
        pairs += dense_pairs(backbone.embeddings_projection, "embeddings_project")
    for i, layer in enumerate(backbone.transformer_layers):
        prefix = f"encoder.layer.{i}"
        attention = layer.attention
        self_prefix = f"{prefix}.attention.self"
        pairs += dense_pairs(attention.query_dense, f"{self_prefix}.query")
        pairs += dense_pairs(attention.key_dense, f"{self_prefix}.key")
        pairs += dense_pairs(attention.value_dense, f"{self_prefix}.value")
        if attention.conv_type != "none":
            conv = attention.span_dynamic_conv
            if conv.conv_type == "span":
                key_prefix = f"{self_prefix}.key_conv_attn_layer"
                pairs += [
                    (conv.key_depthwise_kernel, f"{key_prefix}.depthwise.weight", _depthwise),
                    (conv.key_pointwise_dense.kernel, f"{key_prefix}.pointwise.weight", _pointwise),
                    (conv.key_pointwise_dense.bias, f"{key_prefix}.bias", _flatten),
                ]
            pairs += dense_pairs(conv.kernel_dense, f"{self_prefix}.conv_kernel_layer")
            pairs += dense_pairs(conv.conv_value_dense, f"{self_prefix}.conv_out_layer")
        pairs += dense_pairs(attention.output_dense, f"{prefix}.attention.output.dense")
        pairs += norm_pairs(layer.attention_layer_norm, f"{prefix}.attention.output.LayerNorm")
        pairs += dense_pairs(
            layer.feedforward_intermediate_dense, f"{prefix}.intermediate.dense", _linear
        )
        pairs += dense_pairs(layer.feedforward_output_dense, f"{prefix}.output.dense", _linear)
        pairs += norm_pairs(layer.feedforward_layer_norm, f"{prefix}.output.LayerNorm")
    return pairs
