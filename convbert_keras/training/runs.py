"""Run folders that survive kills and protect their settings: the saved
run configuration, the resumable training checkpoint, presets written
whole."""

import contextlib
import dataclasses
import json
import math
import os
import shutil
import socket
import sys
import tempfile
import time

# Held by the process training in a run folder (see `run_lock`).
LOCK_FILE = "run.lock"


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


def restore_training(model, output_dir, chief, max_to_keep=3, warn=None):
    """Restores `model` (built, its optimizer built) from the newest
    readable checkpoint in `<output_dir>/checkpoints`, if there is one.

    A checkpoint that cannot be read (truncated or deleted files: a full
    disk, a node lost while its file system flushed) is skipped with a
    warning that names it (`warn`, a function of one line; stderr by
    default), and the one before it is tried; if there are checkpoints and
    none can be read, a `ValueError` names the folder and what to do.

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
    state = tf.train.get_checkpoint_state(directory)
    # Newest first, as the checkpoint manager recorded them once written.
    saved = list(reversed(state.all_model_checkpoint_paths)) if state else []
    for path in saved:
        try:
            checkpoint.restore(path).assert_existing_objects_matched()
        except (tf.errors.OpError, ValueError, IndexError, AssertionError) as error:
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            (warn or _warn)(
                f"warning: skipping checkpoint {path}: it cannot be read ({reason}); "
                "trying the one before it."
            )
            continue
        return manager, path
    if saved:
        raise ValueError(
            f"None of the {len(saved)} checkpoints in {directory} can be read "
            f"({', '.join(os.path.basename(p) for p in saved)}). Restore the folder from a "
            f"backup, or delete {directory} to train the run again from the start."
        )
    return manager, None


class TrainingDiverged(ValueError):
    """The training loss stopped being finite."""


def check_finite_loss(logs, step, manager):
    """Raises `TrainingDiverged` if the running loss in `logs` is NaN or
    infinite at `step`, a checkpoint's step: called before saving, so the
    diverged state is never saved and the newest checkpoint in `manager`
    stays the last good one. The message names both."""
    value = logs.get("loss") if logs else None
    if value is None:
        return
    import numpy as np

    loss = float(np.ravel(np.asarray(value, dtype="float64"))[0])
    if math.isfinite(loss):
        return
    last = manager.latest_checkpoint
    kept = (
        f"its last good checkpoint, {last}, is kept" if last else "it had saved no checkpoint yet"
    )
    raise TrainingDiverged(
        f"The training loss is {loss} at step {step}: the run diverged (a learning rate "
        f"too high, or float16 without loss scaling). It stopped without saving; {kept}. "
        "Train again with a lower learning rate or in float32, in a new output folder "
        "(a run folder keeps its settings)."
    )


class RunFolderInUse(OSError):
    """Another process is training in the run folder."""


def _holder(fd):
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 4096).decode("utf-8", "replace").strip()
    try:
        return json.loads(text) if text else None
    except ValueError:
        return {"pid": "?", "host": "?", "started": text[:40]}


def _named(holder):
    return f"process {holder.get('pid')} on {holder.get('host')} (started {holder.get('started')})"


@contextlib.contextmanager
def run_lock(output_dir, enabled=True, warn=None):
    """Holds `<output_dir>/run.lock` while a run trains there, so that a
    second process started on the same folder is refused at once, with
    `RunFolderInUse` naming the process that trains (pid, host, start).

    The lock is an advisory `flock` on the file, which the operating system
    releases when its holder exits, however it ends: a lock left by a
    killed process is taken over, and the takeover is said (`warn`; stderr
    by default). The file holds the holder's pid, host and start time for
    those messages and is emptied, not removed, when the run ends (removing
    it would let two processes lock two different files). Needs a file
    system with working `flock` (local disks; NFS only with lock support).
    `enabled=False` (a multi-worker cluster's non-chief workers, which share
    the chief's folder) takes no lock.
    """
    if not enabled:
        yield
        return
    import fcntl

    path = os.path.join(output_dir, LOCK_FILE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd) or {}
            raise RunFolderInUse(
                f"{output_dir} is in use: {_named(holder)} is training there. Wait for it "
                "to end or stop it, then run this command again (it resumes the run); or "
                "give this one another output folder."
            ) from None
        previous = _holder(fd)
        if previous:
            (warn or _warn)(
                f"warning: {output_dir} was left locked by {_named(previous)}, which ended "
                "without finishing; taking over."
            )
        me = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(me).encode("utf-8"))
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)


def _warn(line):
    print(line, file=sys.stderr, flush=True)


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
