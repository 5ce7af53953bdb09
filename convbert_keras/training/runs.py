"""Run folders that survive kills and protect their settings: the saved
run configuration, the resumable training checkpoint, presets written
whole."""

import dataclasses
import json
import os
import shutil
import tempfile


def setting(default, help, **options):
    """A field of a run configuration dataclass: its default, the help
    text of its command-line option, and `options` for the option
    (`type` when the default is `None`, `choices`, `nargs`, or `option`,
    its name)."""
    return dataclasses.field(default=default, metadata={"help": help, **options})


def _flatten(config, prefix=""):
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def check_run_config(output_dir, config, what="run"):
    """Refuses to continue the run in `output_dir` with other settings.

    `config` (a JSON-able dict of every setting that changes the result)
    is compared with the `run_config.json` saved there, if any; the first
    difference, in `config`'s order, is named with both values. Returns
    the path to save `config` to once the run starts.
    """
    path = os.path.join(output_dir, "run_config.json")
    if not os.path.exists(path):
        return path
    with open(path, encoding="utf-8") as f:
        saved = _flatten(json.load(f))
    wanted = _flatten(json.loads(json.dumps(config)))
    missing = "<not recorded: the folder predates this setting>"
    for key in [*wanted, *(k for k in saved if k not in wanted)]:
        if saved.get(key, missing) != wanted.get(key, missing):
            raise ValueError(
                f"{output_dir} holds a {what} made with {key}={saved.get(key, missing)!r}; "
                f"this one has {key}={wanted.get(key, missing)!r}. Use the same settings "
                "to resume it, or a new output folder for a new run."
            )
    return path


def training_checkpoint(model):
    """A `tf.train.Checkpoint` of everything a resumed `fit` needs to go on
    exactly as an uninterrupted one: weights, optimizer state (its step
    included), metric accumulators and the random streams.

    Keras' seed generator states (masking, sampling, dropout) and metric
    variables are not tracked by `tf.train.Checkpoint` through the model;
    they are added by hand.
    """
    import tensorflow as tf

    seeds = [v for v in model.variables if v.path.endswith("seed_generator_state")]
    return tf.train.Checkpoint(
        model=model,
        optimizer=model.optimizer,
        random_state={str(i): v.value for i, v in enumerate(seeds)},
        metrics={str(i): v.value for i, v in enumerate(model.metrics_variables)},
    )


def restore_training(model, output_dir, chief, max_to_keep=3):
    """Restores `model` (built, its optimizer built) from the latest
    checkpoint in `<output_dir>/checkpoints`, if there is one.

    Returns `(manager, latest)`: a `tf.train.CheckpointManager` of
    `training_checkpoint(model)` and the restored checkpoint's path, or
    `None`. Workers other than the chief save to a scratch folder, to be
    removed when the run ends (`manager.directory`): all of them must take
    part in saving distributed variables, only the chief's files count.
    """
    import tensorflow as tf

    checkpoint = training_checkpoint(model)
    directory = os.path.join(output_dir, "checkpoints")
    write_dir = directory if chief else tempfile.mkdtemp(prefix="convbert_worker_")
    manager = tf.train.CheckpointManager(checkpoint, write_dir, max_to_keep=max_to_keep)
    latest = tf.train.latest_checkpoint(directory)
    if latest:
        checkpoint.restore(latest).assert_existing_objects_matched()
    return manager, latest


def save_preset(model, path, tokenizer=None):
    """`model.save_to_preset(path)` (and the tokenizer's), written aside
    and renamed: a kill while saving never leaves a preset that looks
    complete."""
    partial = path + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    model.save_to_preset(partial)
    if tokenizer is not None:
        tokenizer.save_to_preset(partial)
    shutil.rmtree(path, ignore_errors=True)
    os.replace(partial, path)
