"""Architectures of the published ConvBERT checkpoints (YituTech/conv-bert-*).

Each entry holds `ConvBertBackbone` keyword arguments. They describe shapes
only; weights come from a converted checkpoint or from training.
"""

import copy

_COMMON = {
    "vocabulary_size": 30522,
    "num_layers": 12,
    "head_ratio": 2,
    "conv_kernel_size": 9,
    "dropout": 0.1,
    "max_sequence_length": 512,
    "num_segments": 2,
}

CONVBERT_CONFIGS = {
    "small": dict(
        _COMMON,
        hidden_dim=256,
        embedding_dim=128,
        num_heads=4,
        intermediate_dim=1024,
        num_groups=1,
    ),
    "medium-small": dict(
        _COMMON,
        hidden_dim=384,
        embedding_dim=128,
        num_heads=8,
        intermediate_dim=1536,
        num_groups=2,
    ),
    "base": dict(
        _COMMON,
        hidden_dim=768,
        embedding_dim=768,
        num_heads=12,
        intermediate_dim=3072,
        num_groups=1,
    ),
}


def convbert_config(size, **overrides):
    """Returns the backbone arguments of a published size, with overrides.

    Example: `ConvBertBackbone(**convbert_config("small", num_layers=4))`.
    """
    if size not in CONVBERT_CONFIGS:
        raise ValueError(
            f"Unknown ConvBERT size {size!r}. Choose one of {sorted(CONVBERT_CONFIGS)}."
        )
    config = copy.deepcopy(CONVBERT_CONFIGS[size])
    config.update(overrides)
    return config
