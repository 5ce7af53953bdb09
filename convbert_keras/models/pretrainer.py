import keras
from keras import ops

from convbert_keras.distribute import ReplicaXlaSteps
from convbert_keras.distribute import replica_row_offset
from convbert_keras.distribute import sum_over_replicas
from convbert_keras.layers.activations import gelu_exact
from convbert_keras.layers.dropout import hash_uniform
from convbert_keras.layers.dropout import int32_seed
from convbert_keras.layers.initializers import convbert_kernel_initializer
from convbert_keras.models.backbone import ConvBertBackbone
from convbert_keras.models.task_heads import logits_dense
from convbert_keras.models.task_heads import masked_lm_head

OBJECTIVES = ("rtd", "mlm")

# Arguments of a discriminator config that a generator takes over unchanged.
_SHARED_ARGUMENTS = (
    "vocabulary_size",
    "num_layers",
    "embedding_dim",
    "head_ratio",
    "conv_kernel_size",
    "conv_type",
    "num_groups",
    "dropout",
    "max_sequence_length",
    "num_segments",
    "layer_norm_epsilon",
    "mask_padding_in_conv",
    "remat",
)


def generator_config(discriminator_config, size=0.25):
    """The generator for a discriminator config, sized as the original
    ConvBERT code sizes it (`run_pretraining.py`): the same depth,
    embeddings and convolution settings; hidden width `round(hidden *
    size)`, feed-forward width 4 x that, and `num_heads * size` heads (1
    for small: one attention and one conv head of width 64 beside a hidden
    width of 64, as in the original). `size` is 1/4 for small and
    medium-small, 1/3 for base."""
    config = {k: discriminator_config[k] for k in _SHARED_ARGUMENTS if k in discriminator_config}
    hidden = max(1, int(round(discriminator_config["hidden_dim"] * size)))
    heads = max(1, int(round(discriminator_config["num_heads"] * size)))
    if hidden % heads:
        raise ValueError(
            f"A generator of size {size} has hidden width {hidden} and {heads} heads, "
            "which do not divide; choose a `generator_size` that keeps "
            "`hidden_dim * size` divisible by `num_heads * size`."
        )
    config["embedding_dim"] = (
        discriminator_config.get("embedding_dim") or discriminator_config["hidden_dim"]
    )
    config["hidden_dim"] = hidden
    config["num_heads"] = heads
    config["intermediate_dim"] = 4 * hidden
    return config


def default_max_predictions(mask_rate, sequence_length):
    """ELECTRA's masked positions per sequence: `int((mask_rate + 0.005) *
    sequence_length)` (19 at 15% of 128)."""
    return max(1, int((mask_rate + 0.005) * sequence_length))


@keras.saving.register_keras_serializable(package="convbert_keras")
class ConvBertPretrainer(ReplicaXlaSteps, keras.Model):
    """Replaced-token-detection pretraining (ELECTRA, as in the paper).

    Each step masks `mask_rate` of the non-special tokens (at most
    `max_predictions` per sequence; of those, `mask_token_rate` become
    `[MASK]`, the rest stay), the generator predicts them (MLM head tied to
    the shared word embeddings), replacements are sampled from its softmax
    with Gumbel noise, and the discriminator labels every token "replaced
    or not". Loss = MLM + `rtd_weight` x RTD. Random numbers come from a
    counter hash, so the whole step compiles with XLA.

    Args:
        discriminator: a `ConvBertBackbone`, the model to keep.
        generator: a `ConvBertBackbone` built with
            `shared_embeddings=discriminator`, or `None` for
            `generator_config(discriminator config, generator_size)`.
        mask_token_id: int. Id of `[MASK]`.
        special_token_ids: ids never masked (`[CLS]`, `[SEP]`, `[PAD]`, ...).
        generator_size: float. Generator width over the discriminator's.
        mask_rate: float. Share of the tokens masked, as above.
        mask_token_rate: float. Share of the masked tokens shown as
            `[MASK]`, as above.
        max_predictions: int. Masked positions per sequence (default
            `default_max_predictions(mask_rate, max_sequence_length)`;
            pass the one of the length trained on).
        rtd_weight: float. Weight of the discriminator loss.
        seed: int. Seed of the masking and sampling.
        objective: `"rtd"` (replaced-token detection, the paper's) or
            `"mlm"`: BERT's masked-LM objective on `discriminator` itself
            (the same masking and tied head, no generator), the control
            that shows what replaced-token detection adds.
        sampling_temperature: float. Replacements are sampled from
            `softmax(generator logits / sampling_temperature)` (ELECTRA's
            `temperature`, 1 in the paper); above 1 they are more varied
            and easier to detect.

    Inputs: `{"token_ids", "segment_ids", "padding_mask"}` `(batch, length)`.
    Outputs: a dict with the generator logits at the masked positions
    `(batch, max_predictions, vocabulary_size)`, the discriminator logits
    `(batch, length)`, the discriminator's input `corrupted_ids` and the
    labels drawn for the step (under `objective="mlm"`, the masked-LM
    logits and their labels only).

    Example:
    <!-- docs-test: skip, needs a packed corpus; `pretrain` builds one and fits this model -->
    ```python
    discriminator = ConvBertBackbone(**convbert_config("small"))
    pretrainer = ConvBertPretrainer(discriminator, mask_token_id=103,
                                    special_token_ids=[0, 101, 102])
    pretrainer.compile(optimizer="adamw")
    pretrainer.fit(packed_dataset, steps_per_epoch=1000)
    discriminator.save_to_preset("pretrained")
    ```
    """

    def __init__(
        self,
        discriminator,
        mask_token_id,
        special_token_ids,
        generator=None,
        generator_size=0.25,
        mask_rate=0.15,
        mask_token_rate=0.85,
        max_predictions=None,
        rtd_weight=50.0,
        seed=None,
        objective="rtd",
        sampling_temperature=1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if sampling_temperature <= 0:
            raise ValueError(
                f"`sampling_temperature` must be positive. Received: {sampling_temperature}"
            )
        if objective not in OBJECTIVES:
            raise ValueError(f"`objective` must be one of {OBJECTIVES}. Received: {objective!r}")
        if not 0 < mask_rate < 1 or not 0 <= mask_token_rate <= 1:
            raise ValueError(
                f"`mask_rate` must be in (0, 1) and `mask_token_rate` in [0, 1]. "
                f"Received: {mask_rate}, {mask_token_rate}"
            )
        if objective == "mlm":
            if generator is not None:
                raise ValueError("`objective='mlm'` trains no generator; pass `generator=None`.")
        elif generator is None:
            generator = ConvBertBackbone(
                **generator_config(discriminator.get_config(), generator_size),
                shared_embeddings=discriminator,
                dtype=discriminator.dtype_policy,
                name="generator",
            )
        elif generator.token_embedding is not discriminator.token_embedding:
            raise ValueError(
                "The generator must share the discriminator's embeddings: build it "
                "with `ConvBertBackbone(..., shared_embeddings=discriminator)`."
            )
        self.discriminator = discriminator
        self.generator = generator
        policy = discriminator.dtype_policy
        self.objective = objective
        self.generator_head = masked_lm_head(discriminator, "generator_head")
        if objective == "rtd":
            # ELECTRA's discriminator head: Dense(hidden) + GELU, then one logit.
            self.discriminator_dense = keras.layers.Dense(
                discriminator.hidden_dim,
                activation=gelu_exact,
                kernel_initializer=convbert_kernel_initializer(),
                dtype=policy,
                name="discriminator_dense",
            )
            self.discriminator_logits = logits_dense(1, policy, name="discriminator_logits")
        self.seed_generator = keras.random.SeedGenerator(seed, name="masking_seed")

        self.mask_token_id = int(mask_token_id)
        self.special_token_ids = sorted(int(i) for i in special_token_ids)
        self.generator_size = generator_size
        self.mask_rate = mask_rate
        self.mask_token_rate = mask_token_rate
        self.max_predictions = max_predictions or default_max_predictions(
            mask_rate, discriminator.max_sequence_length
        )
        self.rtd_weight = rtd_weight
        self.sampling_temperature = sampling_temperature
        self.seed = seed

        self.mlm_loss_tracker = keras.metrics.Mean(name="mlm_loss")
        self.generator_accuracy = keras.metrics.Mean(name="generator_accuracy")
        if objective == "rtd":
            self.rtd_loss_tracker = keras.metrics.Mean(name="rtd_loss")
            self.discriminator_accuracy = keras.metrics.Mean(name="discriminator_accuracy")
            self.replaced_precision = keras.metrics.Precision(name="replaced_precision")
            self.replaced_recall = keras.metrics.Recall(name="replaced_recall")
            # Precision and recall at 0.5 stay near 0 while replaced tokens
            # are a minority even when the discriminator ranks them well;
            # the AUC (ELECTRA's `disc_auc`) and the loss of the best
            # constant guess (the binary entropy of the replaced share)
            # show whether it separates them at all.
            self.replaced_auc = keras.metrics.AUC(name="replaced_auc")
            self.base_rate_loss = keras.metrics.Mean(name="rtd_base_rate_loss")
        # The heads are built here rather than in the first call: a model
        # with all its variables lets `fit` build the optimizer before it
        # traces the step (`ReplicaXlaSteps`), which it then traces once.
        # Inside the model's name scope, as in a call: the same variable
        # paths (and optimizer slot names) as before.
        heads_input = (None, None, (generator or discriminator).hidden_dim)
        with keras.name_scope(self.name, caller=self):
            self.generator_head.build(heads_input, (None, self.max_predictions))
            if objective == "rtd":
                self.discriminator_dense.build((None, None, discriminator.hidden_dim))
                self.discriminator_logits.build((None, None, discriminator.hidden_dim))
        self.built = True

    def _seeds(self):
        # The same seed on every replica: the draws are keyed by each
        # example's index in the global batch (`replica_row_offset`).
        seed = int32_seed(self.seed_generator.next())
        return [seed + offset for offset in (0, 1, 2)]

    def masked_counts(self, token_ids, padding_mask):
        """The number of positions masked in each sequence: `mask_rate`
        of its maskable tokens (rounded, at least one, at most
        `max_predictions`). It depends on the tokens only, not on the
        random draws."""
        candidate = ops.cast(padding_mask, "bool")
        for special in self.special_token_ids:
            candidate = candidate & (token_ids != special)
        count = ops.sum(ops.cast(candidate, "float32"), axis=1)
        to_mask = ops.minimum(
            ops.cast(ops.round(count * self.mask_rate), "int32"), self.max_predictions
        )
        return ops.maximum(to_mask, ops.cast(count > 0, "int32")), candidate

    def mask(self, token_ids, padding_mask, seeds):
        """Positions `(batch, P)`, their weights (1 = really masked) and
        the generator's input ids."""
        import tensorflow as tf

        shape = tf.shape(token_ids)
        rows = replica_row_offset(shape[0])
        to_mask, candidate = self.masked_counts(token_ids, padding_mask)
        scores = ops.where(candidate, hash_uniform(shape, seeds[0], rows), -1.0)
        top, positions = tf.math.top_k(scores, k=self.max_predictions)
        rank = ops.arange(self.max_predictions, dtype="int32")[None, :]
        weights = ops.cast((rank < to_mask[:, None]) & (top >= 0), "int32")
        original = ops.take_along_axis(token_ids, positions, axis=1)
        use_mask = hash_uniform(tf.shape(positions), seeds[1], rows) < self.mask_token_rate
        masked_values = ops.where(use_mask, self.mask_token_id, original)
        masked_ids = self._scatter(token_ids, positions, weights, masked_values)
        return positions, weights, original, masked_ids

    @staticmethod
    def _scatter(token_ids, positions, weights, values):
        """`token_ids` with `values` written at the weighted `positions`."""
        hit = ops.one_hot(positions, ops.shape(token_ids)[1], dtype="int32") * weights[..., None]
        written = ops.sum(hit * values[..., None], axis=1)
        return ops.where(ops.sum(hit, axis=1) > 0, written, token_ids)

    def call(self, inputs, training=False):
        import tensorflow as tf

        inputs = dict(inputs)
        totals = inputs.pop("loss_totals", None)
        token_ids = inputs["token_ids"]
        padding_mask = inputs["padding_mask"]
        seeds = self._seeds()
        positions, weights, original, masked_ids = self.mask(token_ids, padding_mask, seeds)
        masked_lm = {
            "mask_positions": positions,
            "mask_weights": weights,
            "original_ids": original,
            "padding_mask": ops.cast(padding_mask, "int32"),
        }
        if totals is not None:
            masked_lm["loss_totals"] = totals
        if self.objective == "mlm":
            sequence = self.discriminator({**inputs, "token_ids": masked_ids}, training=training)[
                "sequence_output"
            ]
            logits = ops.cast(self.generator_head(sequence, positions), "float32")
            return {"generator_logits": logits, **masked_lm}
        generator_sequence = self.generator({**inputs, "token_ids": masked_ids}, training=training)[
            "sequence_output"
        ]
        generator_logits = ops.cast(self.generator_head(generator_sequence, positions), "float32")
        # Gumbel-max sampling from the generator's softmax; no gradient
        # flows through the sample.
        noise_shape = tf.shape(generator_logits)
        noise = -ops.log(
            -ops.log(hash_uniform(noise_shape, seeds[2], replica_row_offset(noise_shape[0])))
        )
        scaled = ops.stop_gradient(generator_logits) / self.sampling_temperature
        sampled = ops.cast(ops.argmax(scaled + noise, axis=-1), "int32")
        corrupted = self._scatter(token_ids, positions, weights, sampled)
        discriminator_sequence = self.discriminator(
            {**inputs, "token_ids": corrupted}, training=training
        )["sequence_output"]
        discriminator_logits = self.discriminator_logits(
            self.discriminator_dense(discriminator_sequence)
        )[..., 0]
        return {
            "generator_logits": generator_logits,
            "discriminator_logits": ops.cast(discriminator_logits, "float32"),
            "corrupted_ids": corrupted,
            "replaced": ops.cast(corrupted != token_ids, "int32"),
            **masked_lm,
        }

    def loss_totals(self, inputs):
        """The denominators of the step's mean losses, summed over the
        replicas: masked positions (the masked-LM mean) and real tokens
        (the replaced-token mean). Each replica divides its share of the
        sums by these, so the summed gradients are those of the global
        batch's means, as on one device, however the masked positions fall
        between the replicas."""
        masked, _ = self.masked_counts(inputs["token_ids"], inputs["padding_mask"])
        # Integers: a mixed-precision model would cast float inputs to
        # its 16-bit compute type, which cannot hold a count exactly.
        local = ops.stack([ops.sum(masked), ops.sum(ops.cast(inputs["padding_mask"], "int32"))])
        return sum_over_replicas(local)

    def train_step(self, data):
        # Outside the compiled replica step under a multi-replica strategy:
        # the totals need an all-reduce.
        return super().train_step({**data, "loss_totals": self.loss_totals(data)})

    def _pretraining_losses(self, outputs):
        """The masked-LM and replaced-token losses: this replica's share of
        the global means when `loss_totals` are in the outputs (training),
        else the batch's means."""
        mask_weights = ops.cast(outputs["mask_weights"], "float32")
        real = ops.cast(outputs["padding_mask"], "float32")
        if "loss_totals" in outputs:
            totals = ops.cast(outputs["loss_totals"], "float32")
            masked_total, real_total = totals[0], totals[1]
        else:
            masked_total, real_total = ops.sum(mask_weights), ops.sum(real)
        mlm = keras.losses.sparse_categorical_crossentropy(
            outputs["original_ids"], outputs["generator_logits"], from_logits=True
        )
        mlm = ops.sum(mlm * mask_weights) / ops.maximum(masked_total, 1.0)
        if self.objective == "mlm":
            return mlm, 0.0
        rtd = keras.losses.binary_crossentropy(
            ops.cast(outputs["replaced"], "float32")[..., None],
            outputs["discriminator_logits"][..., None],
            from_logits=True,
        )
        rtd = ops.sum(rtd * real) / ops.maximum(real_total, 1.0)
        return mlm, rtd

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        from convbert_keras._compat import scale_loss_for_distribution

        mlm, rtd = self._pretraining_losses(y_pred)
        loss = mlm + self.rtd_weight * rtd
        # Without global totals (evaluation) the losses are this replica's
        # means: its share is a mean over the replicas.
        return loss if "loss_totals" in y_pred else scale_loss_for_distribution(loss)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        from convbert_keras._compat import unscale_loss_for_distribution

        mlm, rtd = self._pretraining_losses(y_pred)
        if "loss_totals" in y_pred:
            # A replica's share of a global mean, times the replicas: the
            # metric's mean over the replicas is the global mean.
            mlm = unscale_loss_for_distribution(mlm)
            rtd = unscale_loss_for_distribution(rtd) if self.objective == "rtd" else rtd
        self.mlm_loss_tracker.update_state(mlm)
        mask_weights = ops.cast(y_pred["mask_weights"], "float32")
        predicted = ops.cast(ops.argmax(y_pred["generator_logits"], axis=-1), "int32")
        self.generator_accuracy.update_state(
            ops.cast(predicted == y_pred["original_ids"], "float32"), sample_weight=mask_weights
        )
        if self.objective == "rtd":
            self._update_discriminator_metrics(y_pred, rtd)
        results = self.get_metrics_result()
        import tensorflow as tf

        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras (3.15) averages multi-worker logs over axis 0, which a
            # scalar lacks.
            results = {k: ops.reshape(v, (1,)) for k, v in results.items()}
        return results

    def _update_discriminator_metrics(self, y_pred, rtd):
        self.rtd_loss_tracker.update_state(rtd)
        real = ops.cast(y_pred["padding_mask"], "float32")
        replaced = y_pred["replaced"]
        guess = ops.cast(y_pred["discriminator_logits"] > 0, "int32")
        self.discriminator_accuracy.update_state(
            ops.cast(guess == replaced, "float32"), sample_weight=real
        )
        self.replaced_precision.update_state(replaced, guess, sample_weight=real)
        self.replaced_recall.update_state(replaced, guess, sample_weight=real)
        self.replaced_auc.update_state(
            replaced, ops.sigmoid(y_pred["discriminator_logits"]), sample_weight=real
        )
        share = ops.sum(ops.cast(replaced, "float32") * real) / ops.maximum(ops.sum(real), 1.0)
        share = ops.clip(share, 1e-7, 1 - 1e-7)
        self.base_rate_loss.update_state(-share * ops.log(share) - (1 - share) * ops.log(1 - share))

    def compile(self, optimizer="adamw", *, jit_compile=True, **kwargs):
        """Compiles the training step, with XLA by default (Keras' own
        default turns XLA off on CPU and under tf.distribute)."""
        super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "discriminator": keras.saving.serialize_keras_object(self.discriminator),
                "generator_config": self.generator.get_config() if self.generator else None,
                "mask_token_id": self.mask_token_id,
                "special_token_ids": self.special_token_ids,
                "generator_size": self.generator_size,
                "mask_rate": self.mask_rate,
                "mask_token_rate": self.mask_token_rate,
                "max_predictions": self.max_predictions,
                "rtd_weight": self.rtd_weight,
                "seed": self.seed,
                "objective": self.objective,
                "sampling_temperature": self.sampling_temperature,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        discriminator = keras.saving.deserialize_keras_object(config.pop("discriminator"))
        generator_kwargs = config.pop("generator_config")
        generator = generator_kwargs and ConvBertBackbone(
            **generator_kwargs, shared_embeddings=discriminator
        )
        return cls(discriminator, generator=generator, **config)
