"""The paper's optimiser set-up: AdamW, warmup + linear decay, layer-wise
learning-rate decay."""

import re

import keras

# LayerNorm scales/offsets and biases are not decayed (BERT/ELECTRA).
NO_DECAY = ("gamma", "beta", "bias")
_LAYER = re.compile(r"transformer_layer_(\d+)/")
_EMBEDDING = re.compile(r"embedding")


@keras.saving.register_keras_serializable(package="convbert_keras")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from 0 to `peak` over `warmup_steps`, then linear
    decay to 0 at `total_steps` (BERT/ELECTRA's schedule)."""

    def __init__(self, peak, warmup_steps, total_steps):
        self.peak = peak
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warmup = step / max(self.warmup_steps, 1)
        decay = (self.total_steps - step) / max(self.total_steps - self.warmup_steps, 1)
        return self.peak * keras.ops.maximum(keras.ops.minimum(warmup, decay), 0.0)

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "total_steps": self.total_steps}


def layer_multiplier(path, num_layers, layer_decay):
    """ELECTRA's layer-wise decay: the task head trains at the full rate,
    encoder layer i at `layer_decay ** (num_layers - i)`, the embeddings at
    `layer_decay ** (num_layers + 1)`."""
    if layer_decay is None or layer_decay == 1.0:
        return 1.0
    layer = _LAYER.search(path)
    if layer:
        return layer_decay ** (num_layers - int(layer.group(1)))
    if _EMBEDDING.search(path):
        return layer_decay ** (num_layers + 1)
    return 1.0


@keras.saving.register_keras_serializable(package="convbert_keras")
class ConvBertAdamW(keras.optimizers.Adam):
    """AdamW with decoupled weight decay that skips LayerNorm and biases,
    and with optional layer-wise learning-rate decay.

    Each variable's step (Adam update and weight decay) uses the learning
    rate times `layer_multiplier(variable.path, num_layers, layer_decay)`.

    Args:
        learning_rate: float or schedule.
        weight_decay: float. Decoupled weight decay.
        layer_decay: float or `None`. Per-layer factor (0.8 in the paper's
            fine-tuning); needs `num_layers`.
        num_layers: int. Encoder depth.
        **kwargs: `keras.optimizers.Adam` arguments (epsilon, clipping, ...).

    Example:
    ```python
    optimizer = ConvBertAdamW(WarmupLinearDecay(1e-4, 100, 1000), layer_decay=0.8,
                              num_layers=12, epsilon=1e-6, global_clipnorm=1.0)
    ```
    """

    def __init__(self, learning_rate=1e-4, weight_decay=0.01, layer_decay=None, num_layers=None,
                 **kwargs):
        kwargs.pop("name", None)
        super().__init__(learning_rate=learning_rate, name="convbert_adamw", **kwargs)
        if layer_decay not in (None, 1.0) and not num_layers:
            raise ValueError("`layer_decay` needs `num_layers`, the encoder depth.")
        self.decoupled_weight_decay = weight_decay
        self.layer_decay = layer_decay
        self.num_layers = num_layers

    def build(self, var_list):
        super().build(var_list)
        self._multipliers = [
            layer_multiplier(v.path, self.num_layers, self.layer_decay) for v in var_list
        ]
        self._decays = [not v.path.split("/")[-1].startswith(NO_DECAY) for v in var_list]

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        learning_rate = keras.ops.cast(learning_rate, variable.dtype) * self._multipliers[index]
        if self.decoupled_weight_decay and self._decays[index]:
            variable.assign(variable - variable * (self.decoupled_weight_decay * learning_rate))
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "weight_decay": self.decoupled_weight_decay,
                "layer_decay": self.layer_decay,
                "num_layers": self.num_layers,
            }
        )
        return config


def adamw(learning_rate, weight_decay=0.01, layer_decay=None, num_layers=None):
    """The paper's AdamW: eps 1e-6, no decay on LayerNorm and biases,
    gradients clipped to global norm 1.0."""
    return ConvBertAdamW(
        learning_rate, weight_decay=weight_decay, layer_decay=layer_decay,
        num_layers=num_layers, epsilon=1e-6, global_clipnorm=1.0,
    )
