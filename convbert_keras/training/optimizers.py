"""The paper's optimiser set-up: AdamW, warmup + linear decay, layer-wise
learning-rate decay."""

import re

import keras

from convbert_keras._compat import variable_index

# ELECTRA (and so ConvBERT) decays no variable whose name contains "bias",
# "LayerNorm" or "layer_norm"; the Keras names spell LayerNorm layer_norm.
_NO_DECAY = re.compile(r"bias|layer_?norm", re.IGNORECASE)
_LAYER = re.compile(r"transformer_layer_(\d+)/")
_EMBEDDING = re.compile(r"embedding")


def decays(path):
    """Whether weight decay applies to the variable at `path` (ELECTRA's
    exclusions: any name containing `bias` or LayerNorm)."""
    return not _NO_DECAY.search(path)


@keras.saving.register_keras_serializable(package="convbert_keras")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """ELECTRA's schedule: `peak * min(1, step / warmup_steps) * max(0, 1 -
    step / total_steps)`, a linear decay from `peak` at step 0 to 0 at
    `total_steps`, scaled by a linear warmup (`model/optimization.py`; the
    decay does not restart after the warmup, so the rate peaks just below
    `peak`)."""

    def __init__(self, peak, warmup_steps, total_steps):
        self.peak = peak
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warmup = keras.ops.minimum(step / self.warmup_steps, 1.0) if self.warmup_steps else 1.0
        decay = keras.ops.maximum(1.0 - step / max(self.total_steps, 1), 0.0)
        return self.peak * warmup * decay

    def get_config(self):
        return {
            "peak": self.peak,
            "warmup_steps": self.warmup_steps,
            "total_steps": self.total_steps,
        }


def layer_depth(path, num_layers):
    """ELECTRA's depth of a variable (`_get_layer_lrs`): the embeddings 0,
    encoder layer i (from 0) i + 1, everything else (the task head)
    `num_layers + 2`."""
    layer = _LAYER.search(path)
    if layer:
        return int(layer.group(1)) + 1
    if _EMBEDDING.search(path):
        return 0
    return num_layers + 2


def layer_multiplier(path, num_layers, layer_decay):
    """ELECTRA's layer-wise learning-rate factor,
    `layer_decay ** (num_layers + 2 - layer_depth(path))`: 1 for the task
    head, `layer_decay ** 2` for the top encoder layer, `layer_decay **
    (num_layers + 2)` for the embeddings."""
    if layer_decay is None or layer_decay == 1.0:
        return 1.0
    return layer_decay ** (num_layers + 2 - layer_depth(path, num_layers))


@keras.saving.register_keras_serializable(package="convbert_keras")
class ConvBertAdamW(keras.optimizers.Adam):
    """AdamW with decoupled weight decay that skips LayerNorm and biases
    (`decays`), and with optional layer-wise learning-rate decay.

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
    from convbert_keras.training.optimizers import ConvBertAdamW, WarmupLinearDecay

    optimizer = ConvBertAdamW(WarmupLinearDecay(1e-4, 100, 1000), layer_decay=0.8,
                              num_layers=12, epsilon=1e-6, global_clipnorm=1.0)
    ```
    """

    def __init__(
        self, learning_rate=1e-4, weight_decay=0.01, layer_decay=None, num_layers=None, **kwargs
    ):
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
        self._decays = [decays(v.path) for v in var_list]

    def _clip_gradients(self, grads):
        # Keras (3.15) clips each replica's gradients and only then sums
        # them over the replicas, so a global-norm clip sees a replica's
        # share, not the step's gradient. Summing first clips what one
        # device would clip.
        # (`apply` has dropped the variables without a gradient.)
        from convbert_keras.distribute import sum_over_replicas

        return super()._clip_gradients(sum_over_replicas(list(grads)))

    def _all_reduce_sum_gradients(self, grads_and_vars):
        return grads_and_vars  # summed over replicas in `_clip_gradients`

    def update_step(self, gradient, variable, learning_rate):
        index = variable_index(self, variable)
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
        learning_rate,
        weight_decay=weight_decay,
        layer_decay=layer_decay,
        num_layers=num_layers,
        epsilon=1e-6,
        global_clipnorm=1.0,
    )
