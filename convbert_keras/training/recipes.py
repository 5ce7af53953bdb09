"""The published pretraining settings of each ConvBERT size, as named
recipes.

From the original code's `configure_pretraining.py` (yitu-opensource/ConvBert):
defaults learning rate 5e-4, batch 128, 1,000,000 steps, 10,000 warmup
steps, 15% masking, a generator 1/4 as wide, sequences of 128, weight decay
0.01; `small` sets the learning rate to 3e-4, `base` to 2e-4 with batch 256
and a generator 1/3 as wide. The loss weights (50 x replaced-token
detection), the temperature (1) and the 85% `[MASK]` share are the
pretrainer's defaults.
"""

import copy

_COMMON = dict(
    steps=1_000_000,
    warmup_steps=10_000,
    batch_size=128,
    sequence_length=128,
    learning_rate=5e-4,
    mask_rate=0.15,
    generator_size=0.25,
    weight_decay=0.01,
)

PRETRAINING_RECIPES = {
    "small": dict(_COMMON, size="small", learning_rate=3e-4),
    "medium-small": dict(_COMMON, size="medium-small"),
    "base": dict(_COMMON, size="base", learning_rate=2e-4, batch_size=256, generator_size=1 / 3),
}


def pretraining_recipe(name):
    """The settings of a named recipe: `size` (a `convbert_config` size)
    and the `PretrainConfig` fields `steps`, `warmup_steps`, `batch_size`,
    `sequence_length`, `learning_rate`, `mask_rate`, `generator_size`,
    `weight_decay`."""
    if name not in PRETRAINING_RECIPES:
        raise ValueError(f"Unknown recipe {name!r}; choose one of {sorted(PRETRAINING_RECIPES)}.")
    return copy.deepcopy(PRETRAINING_RECIPES[name])
