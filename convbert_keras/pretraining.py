"""Replaced-token-detection pretraining runs: resumable and distributed."""

import json
import math
import os
import shutil
import tempfile
import time

import keras
import numpy as np

from convbert_keras.files import write_json
from convbert_keras.models.backbone import ConvBertBackbone
from convbert_keras.models.pretrainer import ConvBertPretrainer
from convbert_keras.optimizers import WarmupLinearDecay
from convbert_keras.optimizers import adamw

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def make_strategy(name="default", tpu=None):
    """A `tf.distribute` strategy by name: `default` (one device),
    `mirrored` (all local GPUs, or CPU devices), `multi_worker` (cluster
    from the `TF_CONFIG` environment variable), `tpu` (`tpu`: the TPU name
    or address; empty on a TPU VM). Create it before any other TF work."""
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "The multi_worker strategy reads the cluster from TF_CONFIG, which "
                "is not set; see the README for a launch example."
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"Unknown strategy {name!r}; expected one of {STRATEGIES}.")


def _is_chief(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


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

    def __init__(self, manager, curve_dir=None):
        super().__init__()
        self.manager = manager
        self.curve_dir = curve_dir

    def on_epoch_end(self, epoch, logs=None):
        optimizer = self.model.optimizer
        step = int(optimizer.iterations.numpy())
        logs = logs if logs is not None else {}
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        logs["step"] = step
        if self.curve_dir is not None:
            _record_learning_curve(
                self.curve_dir, {k: float(np.ravel(v)[0]) for k, v in logs.items()} | {"step": step}
            )
        self.manager.save(checkpoint_number=step)


def _run_config(backbone_kwargs, sequence_length, vocabulary_size):
    return {
        "backbone": backbone_kwargs,
        "sequence_length": sequence_length,
        "vocabulary_size": vocabulary_size,
    }


def _check_run_config(output_dir, config):
    path = os.path.join(output_dir, "run_config.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
        if saved != json.loads(json.dumps(config)):
            raise ValueError(
                f"{output_dir} holds checkpoints of a different configuration "
                f"({saved}) than this run ({config}). Use a new --output folder, "
                "or the same settings to resume."
            )
    return path


def pretrain(documents_fn, tokenizer, backbone_kwargs, output_dir, total_steps,
             batch_size=32, sequence_length=128, learning_rate=5e-4, warmup_steps=None,
             checkpoint_every=100, generator_size=0.25, mixed_precision=None,
             strategy=None, seed=0, objective="rtd", sampling_temperature=1.0, verbose=1):
    """Pretrains a ConvBERT discriminator with replaced-token detection.

    Args:
        documents_fn: a function returning a fresh `tf.data.Dataset` of
            documents (strings), e.g. `lambda: text_file_documents(paths)`.
        tokenizer: a `ConvBertTokenizer` whose vocabulary the model embeds.
        backbone_kwargs: `ConvBertBackbone` arguments of the discriminator.
        output_dir: run folder: `checkpoints/` (resumed from when present),
            `logs/` (TensorBoard), `learning_curve.json` (every interval's
            metrics: `read_learning_curve`), `run_config.json`, and at the end
            `preset/`, the discriminator and tokenizer as a keras-hub preset.
        total_steps: int. Training steps (rounded up to whole
            `checkpoint_every` intervals).
        batch_size: int. Global batch size (split over replicas).
        sequence_length: int. Packed sequence length.
        learning_rate: float. Peak learning rate.
        warmup_steps: int. Linear warmup (default 10% of `total_steps`).
        checkpoint_every: int. Steps between checkpoints (and log lines).
        generator_size: float. Generator width over the discriminator's.
        mixed_precision: `None`, `"mixed_float16"` (with loss scaling) or
            `"mixed_bfloat16"`: the models' dtype policy.
        strategy: a `tf.distribute` strategy (`make_strategy`).
        seed: int. Seeds the initial weights, data order and masking.
        objective: `"rtd"` (replaced-token detection) or `"mlm"` (masked
            LM on the same model: the control; see `ConvBertPretrainer`).
        sampling_temperature: float. Temperature of the generator's
            samples (`ConvBertPretrainer`).

    Returns: a dict: `discriminator` (the trained backbone), `metrics` (of
    the last interval, also when the run had finished before this call),
    `history` (of the intervals this call trained), `steps`, `steps_run`,
    `steps_per_second`.
    """
    import tensorflow as tf

    strategy = strategy or tf.distribute.get_strategy()
    backbone_kwargs = dict(backbone_kwargs, max_sequence_length=max(
        backbone_kwargs.get("max_sequence_length", sequence_length), sequence_length
    ))
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
        raise ValueError(
            f"`batch_size` {batch_size} must divide evenly over {replicas} replicas."
        )
    chief = _is_chief(strategy)
    os.makedirs(output_dir, exist_ok=True)
    run_config = _run_config(backbone_kwargs, sequence_length, tokenizer.vocabulary_size())
    config_path = _check_run_config(output_dir, run_config)

    def dataset_fn(input_context):
        from convbert_keras.data.corpus import pretraining_dataset

        return pretraining_dataset(
            documents_fn(), tokenizer, sequence_length,
            input_context.get_per_replica_batch_size(batch_size), seed=seed,
            num_shards=input_context.num_input_pipelines,
            shard_index=input_context.input_pipeline_id,
        )

    # Fail before building anything when there is nothing to train on.
    probe = dataset_fn(tf.distribute.InputContext())
    if not any(True for _ in probe.take(1)):
        raise ValueError(
            "The corpus gives no training sequence: it is empty, or no text is "
            "left after splitting sentences and tokenizing."
        )

    # A policy on the models, not the global one: nothing leaks into the
    # caller's other models.
    dtype = mixed_precision or None
    keras.utils.set_random_seed(seed)
    epochs = math.ceil(total_steps / checkpoint_every)
    total_steps = epochs * checkpoint_every
    with strategy.scope():
        discriminator = ConvBertBackbone(**backbone_kwargs, dtype=dtype)
        pretrainer = ConvBertPretrainer(
            discriminator, mask_token_id=tokenizer.mask_token_id,
            special_token_ids=[tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id],
            generator_size=generator_size, seed=seed, objective=objective,
            sampling_temperature=sampling_temperature, dtype=dtype,
        )
        schedule = WarmupLinearDecay(
            learning_rate, total_steps // 10 if warmup_steps is None else warmup_steps, total_steps
        )
        # XLA compiles one replica's step; Keras cannot jit-compile the
        # cross-replica step of a multi-device strategy. Under mixed_float16
        # Keras wraps the optimizer in a LossScaleOptimizer.
        pretrainer.compile(optimizer=adamw(schedule), jit_compile=replicas == 1)
        optimizer = pretrainer.optimizer
        pretrainer(next(iter(probe)))
        optimizer.build(pretrainer.trainable_variables)

    # Keras' seed generator states (masking, sampling, dropout) are not
    # tracked by tf.train.Checkpoint; saving them makes a resumed run draw
    # the random numbers the uninterrupted run would have drawn.
    random_state = {
        str(i): v.value for i, v in enumerate(
            v for v in pretrainer.variables if v.path.endswith("seed_generator_state")
        )
    }
    checkpoint = tf.train.Checkpoint(model=pretrainer, optimizer=optimizer, random_state=random_state)
    checkpoint_dir = os.path.join(output_dir, "checkpoints")
    # Workers other than the chief write to a scratch folder (all of them
    # must take part in saving distributed variables).
    write_dir = checkpoint_dir if chief else tempfile.mkdtemp(prefix="convbert_worker_")
    manager = tf.train.CheckpointManager(checkpoint, write_dir, max_to_keep=3)
    latest = tf.train.latest_checkpoint(checkpoint_dir)
    if latest:
        checkpoint.restore(latest).assert_existing_objects_matched()
    if chief:
        with open(config_path, "w", encoding="utf-8") as f:
            json.dump(run_config, f, indent=2)
    step = int(optimizer.iterations.numpy())
    if latest and verbose:
        print(f"Resuming from {latest} at step {step}.")

    # The data continues where the checkpoint left it: same order, the
    # batches already trained on skipped.
    dataset = strategy.distribute_datasets_from_function(
        lambda context: dataset_fn(context).skip(step)
    )
    callbacks = [_CheckpointEveryEpoch(manager, output_dir if chief else None)]
    if chief:
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(output_dir, "logs")))
    start = time.time()
    history = pretrainer.fit(
        dataset, epochs=epochs, initial_epoch=step // checkpoint_every,
        steps_per_epoch=checkpoint_every, callbacks=callbacks, verbose=verbose,
        shuffle=False,  # the pipeline shuffles, under the run's seed
    )
    elapsed = time.time() - start
    steps_run = total_steps - step
    if chief:
        preset = os.path.join(output_dir, "preset")
        discriminator.save_to_preset(preset)
        tokenizer.save_to_preset(preset)
    else:
        shutil.rmtree(write_dir, ignore_errors=True)
    final = {k: float(v[-1]) for k, v in history.history.items()} if history.history else {}
    if not final and chief:
        # A finished run trains no further interval: report its last one.
        curve = read_learning_curve(output_dir)
        final = curve[-1] if curve else {}
    return {
        "discriminator": discriminator,
        "metrics": final,
        "history": {k: [float(x) for x in v] for k, v in history.history.items()},
        "steps": int(optimizer.iterations.numpy()),
        "steps_run": steps_run,
        "steps_per_second": steps_run / elapsed if steps_run else 0.0,
    }
