"""Replaced-token-detection pretraining runs: resumable and distributed."""

import dataclasses
import hashlib
import json
import math
import os
import shutil
import time
import warnings

import keras
import numpy as np

from convbert_keras.distribute import is_chief
from convbert_keras.files import write_json
from convbert_keras.models.backbone import ConvBertBackbone
from convbert_keras.models.pretrainer import ConvBertPretrainer
from convbert_keras.models.pretrainer import default_max_predictions
from convbert_keras.models.pretrainer import generator_config
from convbert_keras.training.optimizers import WarmupLinearDecay
from convbert_keras.training.optimizers import adamw
from convbert_keras.training.progress import StepProgress
from convbert_keras.training.runs import check_finite_loss
from convbert_keras.training.runs import check_run_config
from convbert_keras.training.runs import restore_training
from convbert_keras.training.runs import run_lock
from convbert_keras.training.runs import save_preset
from convbert_keras.training.runs import setting

OBJECTIVES = ("rtd", "mlm")
MIXED_PRECISION = ("mixed_float16", "mixed_bfloat16")


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """Every setting of a pretraining run: what `pretrain` trains with,
    saves in `<output_dir>/run_config.json` and checks on a resume.

    Defaults are the scripts'; `convbert_keras.training.recipes` holds the published
    ones. `resolved()` fills in what depends on other settings.

    Example:
    <!-- docs-test: skip, a real run: 1,000 steps of ConvBERT-small on a corpus of yours -->
    ```python
    config = PretrainConfig(backbone=dict(convbert_config("small"), vocabulary_size=30522),
                            steps=1000, batch_size=32)
    pretrain(documents_fn, tokenizer, "runs/small", config)
    ```
    """

    backbone: dict = setting(None, "ConvBertBackbone arguments of the discriminator")
    steps: int = setting(1000, "training steps, rounded up to whole checkpoint intervals")
    batch_size: int = setting(32, "global batch, split over replicas")
    sequence_length: int = setting(128, "length of the packed sequences")
    learning_rate: float = setting(5e-4, "peak learning rate")
    warmup_steps: int = setting(None, "linear warmup (default: 10%% of the steps)", type=int)
    checkpoint_every: int = setting(100, "steps between checkpoints and learning-curve records")
    generator_size: float = setting(0.25, "generator width over the discriminator's")
    mask_rate: float = setting(0.15, "share of tokens masked")
    weight_decay: float = setting(0.01, "AdamW's decoupled weight decay")
    mixed_precision: str = setting(
        None, "the models' dtype policy", type=str, choices=MIXED_PRECISION
    )
    seed: int = setting(0, "seeds the initial weights, data order and masking")
    objective: str = setting(
        "rtd",
        "replaced-token detection (the paper's), or masked LM (the control)",
        choices=OBJECTIVES,
    )
    sampling_temperature: float = setting(
        1.0, "temperature of the generator's samples (1 in the paper)"
    )
    jit_compile: bool = setting(True, "train without XLA (to compare)", option="--no-xla")

    def resolved(self):
        """The configuration as the run uses it, checked: steps rounded up
        to whole `checkpoint_every` intervals, the default warmup, room for
        `sequence_length` positions in the backbone."""
        if not isinstance(self.backbone, dict):
            raise ValueError(
                "`backbone` must be a dict of ConvBertBackbone arguments, e.g. "
                "dict(convbert_config('small'), vocabulary_size=tokenizer.vocabulary_size())."
            )
        if self.steps < 1 or self.checkpoint_every < 1:
            raise ValueError("`steps` and `checkpoint_every` must be positive.")
        if self.objective not in OBJECTIVES:
            raise ValueError(
                f"`objective` must be one of {OBJECTIVES}. Received: {self.objective!r}"
            )
        if self.mixed_precision not in (None, *MIXED_PRECISION):
            raise ValueError(
                f"`mixed_precision` must be None or one of {MIXED_PRECISION}. "
                f"Received: {self.mixed_precision!r}"
            )
        steps = math.ceil(self.steps / self.checkpoint_every) * self.checkpoint_every
        warmup_steps = steps // 10 if self.warmup_steps is None else self.warmup_steps
        positions = max(self.backbone.get("max_sequence_length", 0), self.sequence_length)
        return dataclasses.replace(
            self,
            backbone=dict(self.backbone, max_sequence_length=positions),
            steps=steps,
            warmup_steps=warmup_steps,
        )

    def run_record(self):
        """The settings that change what a run computes, as saved in
        `run_config.json` (XLA or not is left out: a run may resume either way)."""
        record = dataclasses.asdict(self)
        del record["jit_compile"]
        return record

    @classmethod
    def from_run(cls, output_dir):
        """The configuration a run folder was made with."""
        with open(os.path.join(output_dir, "run_config.json"), encoding="utf-8") as f:
            saved = json.load(f)
        return cls(**{f.name: saved[f.name] for f in dataclasses.fields(cls) if f.name in saved})


def read_learning_curve(output_dir):
    """The learning curve of a pretraining run: one record per checkpoint
    interval (`step`, the interval's mean losses and metrics, the learning
    rate), in step order; `[]` before the first interval."""
    path = os.path.join(output_dir, "learning_curve.json")
    if not os.path.isfile(path):
        return []
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _record_learning_curve(output_dir, record):
    # Keyed by step: an interval recomputed after a kill replaces its
    # first record instead of doubling it.
    curve = [r for r in read_learning_curve(output_dir) if r["step"] != record["step"]]
    curve = sorted(curve + [record], key=lambda r: r["step"])
    write_json(os.path.join(output_dir, "learning_curve.json"), curve)


class _CheckpointEveryEpoch(keras.callbacks.Callback):
    """Saves after every "epoch" (= `checkpoint_every` steps), logs the
    learning rate, so that TensorBoard shows it, and (on the chief) adds
    the interval to `learning_curve.json`."""

    def __init__(self, manager, checkpoint_every, curve_dir=None):
        super().__init__()
        self.manager = manager
        self.checkpoint_every = checkpoint_every
        self.curve_dir = curve_dir
        self.started = None

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        optimizer = self.model.optimizer
        # Batches trained, not optimizer steps: a loss-scaled step skipped
        # for an overflow does not advance `iterations`, yet used its batch.
        step = (epoch + 1) * self.checkpoint_every
        logs = logs if logs is not None else {}
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        # Wall time of the interval's steps (the first includes compiling).
        logs["interval_seconds"] = time.perf_counter() - self.started
        logs["step"] = step
        check_finite_loss(logs, step, self.manager)
        if self.curve_dir is not None:
            _record_learning_curve(
                self.curve_dir, {k: float(np.ravel(v)[0]) for k, v in logs.items()} | {"step": step}
            )
        self.manager.save(checkpoint_number=step)


def _fingerprint(batch, tokenizer):
    """A digest of the vocabulary and of the first training batch: another
    corpus, file order or vocabulary shows up as another digest."""
    digest = hashlib.sha256()
    digest.update("\n".join(tokenizer.get_vocabulary()).encode("utf-8"))
    vocabulary = digest.hexdigest()[:16]
    digest = hashlib.sha256()
    for key in sorted(batch):
        digest.update(np.ascontiguousarray(np.asarray(batch[key])).tobytes())
    return vocabulary, digest.hexdigest()[:16]


def pretrain(documents_fn, tokenizer, output_dir, config, strategy=None, corpus=None, verbose=1):
    """Pretrains a ConvBERT discriminator with replaced-token detection.

    Killed at any point and called again with the same arguments, the run
    resumes at its last checkpoint and ends with the weights of an
    uninterrupted run, on one device or under any strategy (the data is
    cut into global batches and each replica trains on its rows of them;
    see `pretraining_dataset`). Called again once finished, it trains
    nothing, says so and returns the run (writing the preset if missing).

    Args:
        documents_fn: a function returning a fresh `tf.data.Dataset` of
            documents (strings), e.g. `lambda: text_file_documents(paths)`.
        tokenizer: a `ConvBertTokenizer` whose vocabulary the model embeds.
        output_dir: run folder: `checkpoints/` (resumed from the newest
            readable one when present), `run.lock` (held while a process
            trains there: `run_lock`), `logs/` (TensorBoard),
            `learning_curve.json` (every interval's metrics:
            `read_learning_curve`), `run_config.json` (every
            setting; a resume with another is refused, naming it), and at
            the end `preset/`, the discriminator and tokenizer as a
            keras-hub preset.
        config: a `PretrainConfig`.
        strategy: a `tf.distribute` strategy
            (`convbert_keras.distribute.make_strategy`).
        corpus: a JSON-able description of the corpus saved with the run
            and checked on resume (the scripts give the files and their
            sizes); the first batch's digest is checked in any case.

    Returns: a dict: `discriminator` (the trained backbone), `metrics` (of
    the last interval, also when the run had finished before this call),
    `history` (of the intervals this call trained), `steps`, `steps_run`,
    `steps_per_second`.
    """
    import tensorflow as tf

    strategy = strategy or tf.distribute.get_strategy()
    config = config.resolved()
    _check_setup(config, tokenizer, strategy)
    chief = is_chief(strategy)
    os.makedirs(output_dir, exist_ok=True)
    # One process per run folder: a second launch is refused at once.
    with run_lock(output_dir, enabled=chief):
        # Seeds the weights, and the data order: tf.data's shuffles depend on
        # the global seed as well as their own.
        keras.utils.set_random_seed(config.seed)
        dataset_fn = _dataset_function(documents_fn, tokenizer, config)
        first = _first_batch(dataset_fn)
        run_config = _run_config(config, tokenizer, strategy, corpus, first)
        config_path = check_run_config(output_dir, run_config, "pretraining run")
        with strategy.scope():
            discriminator, pretrainer = _build_pretrainer(config, tokenizer, first)
        manager, latest = restore_training(pretrainer, output_dir, chief)
        if chief:
            write_json(config_path, run_config)
        # Checkpoints are numbered by the batches trained (see the callback).
        step = int(latest.rsplit("-", 1)[1]) if latest else 0
        if verbose:
            _report_start(output_dir, latest, step, config.steps)
        start = time.time()
        history = _train(
            pretrainer, strategy, dataset_fn, manager, config, step, output_dir, chief, verbose
        )
        elapsed = time.time() - start
        steps_run = config.steps - step
        preset = os.path.join(output_dir, "preset")
        if chief and (steps_run or not os.path.isdir(preset)):
            save_preset(discriminator, preset, tokenizer)
        if not chief:
            shutil.rmtree(manager.directory, ignore_errors=True)
        return {
            "discriminator": discriminator,
            "metrics": _final_metrics(history, output_dir, chief),
            "history": {k: [float(x) for x in v] for k, v in history.items()},
            "steps": config.steps,
            "steps_run": steps_run,
            "steps_per_second": steps_run / elapsed if steps_run else 0.0,
        }


def _check_setup(config, tokenizer, strategy):
    vocabulary_size = config.backbone.get("vocabulary_size")
    if tokenizer.vocabulary_size() != vocabulary_size:
        raise ValueError(
            f"The tokenizer has {tokenizer.vocabulary_size()} word pieces but the "
            f"model embeds {vocabulary_size}; build the model "
            "with the vocabulary's size (or pass the vocabulary it was made for)."
        )
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise ValueError(
            f"`batch_size` {config.batch_size} must divide evenly over {replicas} replicas."
        )
    if config.warmup_steps >= config.steps:
        warnings.warn(
            f"The warmup ({config.warmup_steps} steps) is as long as the run "
            f"({config.steps}): the learning rate never reaches its peak. Pass a "
            "shorter `warmup_steps`.",
            stacklevel=3,
        )


def _dataset_function(documents_fn, tokenizer, config):
    """`(input_context=None, skip=0) -> dataset` of the run's global batches."""

    def dataset_fn(input_context=None, skip=0):
        from convbert_keras.data.corpus import pretraining_dataset

        return pretraining_dataset(
            documents_fn(),
            tokenizer,
            config.sequence_length,
            config.batch_size,
            seed=config.seed,
            input_context=input_context,
            skip_batches=skip,
        )

    return dataset_fn


def _first_batch(dataset_fn):
    # Fails before building anything when there is nothing to train on.
    first = next(iter(dataset_fn().take(1)), None)
    if first is None:
        raise ValueError(
            "The corpus gives no training sequence: it is empty, or no text is "
            "left after splitting sentences and tokenizing."
        )
    return first


def _run_config(config, tokenizer, strategy, corpus, first):
    """What `run_config.json` holds: the settings, and what identifies the
    data (the corpus description, digests of the vocabulary and first batch)."""
    vocabulary_digest, first_batch_digest = _fingerprint(first, tokenizer)
    return {
        **config.run_record(),
        "vocabulary_size": tokenizer.vocabulary_size(),
        "replicas": strategy.num_replicas_in_sync,
        "corpus": corpus,
        "vocabulary_sha256": vocabulary_digest,
        "first_batch_sha256": first_batch_digest,
    }


def _build_pretrainer(config, tokenizer, first):
    """The discriminator and the compiled, built `ConvBertPretrainer`
    (under the caller's strategy scope)."""
    # A policy on the models, not the global one: nothing leaks into the
    # caller's other models.
    dtype = config.mixed_precision
    discriminator = ConvBertBackbone(**config.backbone, dtype=dtype)
    generator = None
    if config.objective == "rtd":
        generator = ConvBertBackbone(
            **generator_config(discriminator.get_config(), config.generator_size),
            shared_embeddings=discriminator,
            dtype=dtype,
            name="generator",
        )
    pretrainer = ConvBertPretrainer(
        discriminator,
        generator=generator,
        mask_token_id=tokenizer.mask_token_id,
        special_token_ids=[tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id],
        generator_size=config.generator_size,
        mask_rate=config.mask_rate,
        max_predictions=default_max_predictions(config.mask_rate, config.sequence_length),
        seed=config.seed,
        objective=config.objective,
        sampling_temperature=config.sampling_temperature,
        dtype=dtype,
    )
    schedule = WarmupLinearDecay(config.learning_rate, config.warmup_steps, config.steps)
    # XLA compiles the step on one device, and each replica's forward and
    # backward pass under a multi-replica strategy (`ReplicaXlaSteps`).
    # Under mixed_float16 Keras wraps the optimizer in a LossScaleOptimizer.
    pretrainer.compile(
        optimizer=adamw(schedule, weight_decay=config.weight_decay),
        jit_compile=config.jit_compile,
    )
    pretrainer(first)
    pretrainer.optimizer.build(pretrainer.trainable_variables)
    return discriminator, pretrainer


def _report_start(output_dir, latest, step, steps):
    if step >= steps:
        print(f"{output_dir} is complete ({step} of {steps} steps); nothing to train.")
    elif latest:
        print(f"Resuming from {latest} at step {step}.")


def _train(pretrainer, strategy, dataset_fn, manager, config, step, output_dir, chief, verbose):
    """Trains from `step` to the end; the history of the intervals trained."""
    if step >= config.steps:
        return {}
    # The data continues where the checkpoint left it: same order, the
    # global batches already trained on skipped.
    dataset = strategy.distribute_datasets_from_function(
        lambda context: dataset_fn(context, skip=step)
    )
    callbacks = [
        _CheckpointEveryEpoch(manager, config.checkpoint_every, output_dir if chief else None)
    ]
    if chief:
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(output_dir, "logs")))
    if chief and verbose:
        callbacks.append(
            StepProgress(config.steps, step, every=config.checkpoint_every, label="pretraining: ")
        )
    return pretrainer.fit(
        dataset,
        epochs=config.steps // config.checkpoint_every,
        initial_epoch=step // config.checkpoint_every,
        steps_per_epoch=config.checkpoint_every,
        callbacks=callbacks,
        verbose=0,
        shuffle=False,  # the pipeline shuffles, under the run's seed
    ).history


def _final_metrics(history, output_dir, chief):
    final = {k: float(v[-1]) for k, v in history.items()} if history else {}
    if not final and chief:
        # A finished run trains no further interval: report its last one.
        curve = read_learning_curve(output_dir)
        final = curve[-1] if curve else {}
    return final
