"""Replaced-token-detection pretraining runs: resumable and distributed."""

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
from convbert_keras.optimizers import WarmupLinearDecay
from convbert_keras.optimizers import adamw
from convbert_keras.runs import check_run_config
from convbert_keras.runs import restore_training
from convbert_keras.runs import save_preset


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


def pretrain(
    documents_fn,
    tokenizer,
    backbone_kwargs,
    output_dir,
    total_steps,
    batch_size=32,
    sequence_length=128,
    learning_rate=5e-4,
    warmup_steps=None,
    checkpoint_every=100,
    generator_size=0.25,
    mask_rate=0.15,
    weight_decay=0.01,
    mixed_precision=None,
    strategy=None,
    seed=0,
    objective="rtd",
    sampling_temperature=1.0,
    corpus=None,
    jit_compile=True,
    verbose=1,
):
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
        backbone_kwargs: `ConvBertBackbone` arguments of the discriminator.
        output_dir: run folder: `checkpoints/` (resumed from when present),
            `logs/` (TensorBoard), `learning_curve.json` (every interval's
            metrics: `read_learning_curve`), `run_config.json` (every
            setting; a resume with another is refused, naming it), and at
            the end `preset/`, the discriminator and tokenizer as a
            keras-hub preset.
        total_steps: int. Training steps (rounded up to whole
            `checkpoint_every` intervals).
        batch_size: int. Global batch size (split over replicas).
        sequence_length: int. Packed sequence length.
        learning_rate: float. Peak learning rate.
        warmup_steps: int. Linear warmup (default 10% of `total_steps`).
        checkpoint_every: int. Steps between checkpoints (and log lines).
        generator_size: float. Generator width over the discriminator's
            (`generator_config`).
        mask_rate: float. Share of the tokens masked.
        weight_decay: float. AdamW's decoupled weight decay.
        mixed_precision: `None`, `"mixed_float16"` (with loss scaling) or
            `"mixed_bfloat16"`: the models' dtype policy.
        strategy: a `tf.distribute` strategy
            (`convbert_keras.distribute.make_strategy`).
        seed: int. Seeds the initial weights, data order and masking.
        objective: `"rtd"` (replaced-token detection) or `"mlm"` (masked
            LM on the same model: the control; see `ConvBertPretrainer`).
        sampling_temperature: float. Temperature of the generator's
            samples (`ConvBertPretrainer`).
        corpus: a JSON-able description of the corpus saved with the run
            and checked on resume (the scripts give the files and their
            sizes); the first batch's digest is checked in any case.
        jit_compile: bool. XLA on (the default, under every strategy) or
            off (to compare, or to debug).

    Returns: a dict: `discriminator` (the trained backbone), `metrics` (of
    the last interval, also when the run had finished before this call),
    `history` (of the intervals this call trained), `steps`, `steps_run`,
    `steps_per_second`.
    """
    import tensorflow as tf

    strategy = strategy or tf.distribute.get_strategy()
    backbone_kwargs = dict(
        backbone_kwargs,
        max_sequence_length=max(
            backbone_kwargs.get("max_sequence_length", sequence_length), sequence_length
        ),
    )
    if tokenizer.vocabulary_size() != backbone_kwargs["vocabulary_size"]:
        raise ValueError(
            f"The tokenizer has {tokenizer.vocabulary_size()} word pieces but the "
            f"model embeds {backbone_kwargs['vocabulary_size']}; build the model "
            "with the vocabulary's size (or pass the vocabulary it was made for)."
        )
    if total_steps < 1 or checkpoint_every < 1:
        raise ValueError("`total_steps` and `checkpoint_every` must be positive.")
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise ValueError(f"`batch_size` {batch_size} must divide evenly over {replicas} replicas.")
    chief = is_chief(strategy)
    os.makedirs(output_dir, exist_ok=True)
    epochs = math.ceil(total_steps / checkpoint_every)
    total_steps = epochs * checkpoint_every
    warmup_steps = total_steps // 10 if warmup_steps is None else warmup_steps
    if warmup_steps >= total_steps:
        warnings.warn(
            f"The warmup ({warmup_steps} steps) is as long as the run ({total_steps}): the "
            "learning rate never reaches its peak. Pass a shorter `warmup_steps`.",
            stacklevel=2,
        )

    # Seeds the weights, and the data order: tf.data's shuffles depend on
    # the global seed as well as their own.
    keras.utils.set_random_seed(seed)

    def dataset_fn(input_context=None, skip=0):
        from convbert_keras.data.corpus import pretraining_dataset

        return pretraining_dataset(
            documents_fn(),
            tokenizer,
            sequence_length,
            batch_size,
            seed=seed,
            input_context=input_context,
            skip_batches=skip,
        )

    # Fail before building anything when there is nothing to train on.
    first = next(iter(dataset_fn().take(1)), None)
    if first is None:
        raise ValueError(
            "The corpus gives no training sequence: it is empty, or no text is "
            "left after splitting sentences and tokenizing."
        )
    vocabulary_digest, first_batch_digest = _fingerprint(first, tokenizer)
    run_config = {
        "backbone": backbone_kwargs,
        "vocabulary_size": tokenizer.vocabulary_size(),
        "sequence_length": sequence_length,
        "batch_size": batch_size,
        "steps": total_steps,
        "checkpoint_every": checkpoint_every,
        "learning_rate": learning_rate,
        "warmup_steps": warmup_steps,
        "weight_decay": weight_decay,
        "generator_size": generator_size,
        "mask_rate": mask_rate,
        "objective": objective,
        "sampling_temperature": sampling_temperature,
        "mixed_precision": mixed_precision,
        "seed": seed,
        "replicas": replicas,
        "corpus": corpus,
        "vocabulary_sha256": vocabulary_digest,
        "first_batch_sha256": first_batch_digest,
    }
    config_path = check_run_config(output_dir, run_config, "pretraining run")

    # A policy on the models, not the global one: nothing leaks into the
    # caller's other models.
    dtype = mixed_precision or None
    with strategy.scope():
        discriminator = ConvBertBackbone(**backbone_kwargs, dtype=dtype)
        generator = None
        if objective == "rtd":
            generator = ConvBertBackbone(
                **generator_config(discriminator.get_config(), generator_size),
                shared_embeddings=discriminator,
                dtype=dtype,
                name="generator",
            )
        pretrainer = ConvBertPretrainer(
            discriminator,
            generator=generator,
            mask_token_id=tokenizer.mask_token_id,
            special_token_ids=[
                tokenizer.cls_token_id,
                tokenizer.sep_token_id,
                tokenizer.pad_token_id,
            ],
            generator_size=generator_size,
            mask_rate=mask_rate,
            max_predictions=default_max_predictions(mask_rate, sequence_length),
            seed=seed,
            objective=objective,
            sampling_temperature=sampling_temperature,
            dtype=dtype,
        )
        schedule = WarmupLinearDecay(learning_rate, warmup_steps, total_steps)
        # XLA compiles the step on one device, and each replica's forward
        # and backward pass under a multi-replica strategy
        # (`ReplicaXlaSteps`). Under mixed_float16 Keras wraps the
        # optimizer in a LossScaleOptimizer.
        pretrainer.compile(
            optimizer=adamw(schedule, weight_decay=weight_decay), jit_compile=jit_compile
        )
        optimizer = pretrainer.optimizer
        pretrainer(first)
        optimizer.build(pretrainer.trainable_variables)

    manager, latest = restore_training(pretrainer, output_dir, chief)
    if chief:
        write_json(config_path, run_config)
    # Checkpoints are numbered by the batches trained (see the callback).
    step = int(latest.rsplit("-", 1)[1]) if latest else 0
    preset = os.path.join(output_dir, "preset")
    if step >= total_steps:
        if verbose:
            print(f"{output_dir} is complete ({step} of {total_steps} steps); nothing to train.")
    elif latest and verbose:
        print(f"Resuming from {latest} at step {step}.")

    history = {}
    start = time.time()
    if step < total_steps:
        # The data continues where the checkpoint left it: same order, the
        # global batches already trained on skipped.
        dataset = strategy.distribute_datasets_from_function(
            lambda context: dataset_fn(context, skip=step)
        )
        callbacks = [
            _CheckpointEveryEpoch(manager, checkpoint_every, output_dir if chief else None)
        ]
        if chief:
            callbacks.append(keras.callbacks.TensorBoard(os.path.join(output_dir, "logs")))
        history = pretrainer.fit(
            dataset,
            epochs=epochs,
            initial_epoch=step // checkpoint_every,
            steps_per_epoch=checkpoint_every,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,  # the pipeline shuffles, under the run's seed
        ).history
    elapsed = time.time() - start
    steps_run = total_steps - step
    if chief and (steps_run or not os.path.isdir(preset)):
        save_preset(discriminator, preset, tokenizer)
    if not chief:
        shutil.rmtree(manager.directory, ignore_errors=True)
    final = {k: float(v[-1]) for k, v in history.items()} if history else {}
    if not final and chief:
        # A finished run trains no further interval: report its last one.
        curve = read_learning_curve(output_dir)
        final = curve[-1] if curve else {}
    return {
        "discriminator": discriminator,
        "metrics": final,
        "history": {k: [float(x) for x in v] for k, v in history.items()},
        "steps": total_steps,
        "steps_run": steps_run,
        "steps_per_second": steps_run / elapsed if steps_run else 0.0,
    }
