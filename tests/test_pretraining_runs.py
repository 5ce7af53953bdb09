"""Pretraining runs on one device, on two devices (MirroredStrategy) and on
two workers (MultiWorkerMirroredStrategy): runs killed in processes of their
own that resume, under XLA, to the weights of an uninterrupted one-device
run."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from support import SENTENCES
from support import SHALLOW
from support import VOCAB
from support import printed_by
from support import script_environment

from convbert_keras.cli.pretrain import main
from convbert_keras.distribute import free_local_ports
from convbert_keras.lab.benchmark import with_xla_dump

pytestmark = pytest.mark.slow

ROOT = os.path.join(os.path.dirname(__file__), "..")
# The one-layer tiny model at length 16, on the same sentences as the
# in-process tests.
TINY = dict(SHALLOW, max_sequence_length=16)


def write_inputs(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES * 20), encoding="utf-8")
    config = tmp_path / "config.json"
    config.write_text(json.dumps(TINY), encoding="utf-8")
    return corpus, config


def pretrain_command(corpus, config, output, steps=20, extra=()):
    return [
        sys.executable,
        os.path.join(ROOT, "scripts", "pretrain.py"),
        "--corpus",
        str(corpus),
        "--config",
        str(config),
        "--vocabulary",
        VOCAB,
        "--output",
        str(output),
        "--steps",
        str(steps),
        "--checkpoint-every",
        "10",
        "--batch-size",
        "8",
        "--sequence-length",
        "16",
        "--learning-rate",
        "2e-3",
        *extra,
    ]


def preset_weights(preset):
    from convbert_keras import ConvBertBackbone

    return [np.asarray(w) for w in ConvBertBackbone.from_preset(str(preset)).get_weights()]


def launch(kind, output, tmp_path, index=0, ports=None, dump=None):
    """Starts one process of a run: `single` (the script on one device),
    `mirrored` (2 replicas on 2 logical CPU devices) or `worker` (worker
    `index` of 2)."""
    corpus, config = tmp_path / "corpus.txt", tmp_path / "config.json"
    command = pretrain_command(corpus, config, output)
    env = script_environment()
    if dump:
        env = with_xla_dump(env, dump)
    if kind == "mirrored":
        command += ["--strategy", "mirrored", "--cpu-devices", "2"]
    elif kind == "worker":
        command += ["--strategy", "multi_worker"]
        cluster = {"worker": [f"localhost:{p}" for p in ports]}
        env["TF_CONFIG"] = json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}
        )
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def run(kind, output, tmp_path, dump=None):
    """A whole run (both workers for `worker`); returns their outputs. A
    `single` run goes in this process: the script's `main` with the same
    arguments, less a TensorFlow start-up (the multi-replica runs need
    processes of their own: devices and cluster are fixed at start-up)."""
    if kind == "single":
        argv = pretrain_command(tmp_path / "corpus.txt", tmp_path / "config.json", output)[2:]
        return [printed_by(main, argv)]
    ports = free_local_ports(2)
    count = 2 if kind == "worker" else 1
    processes = [
        launch(kind, output, tmp_path, i, ports, dump and f"{dump}_{i}") for i in range(count)
    ]
    outputs = [p.communicate(timeout=600) for p in processes]
    for process, (_, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-3000:]
    return [out for out, _ in outputs]


def killed_and_resumed(kind, output, tmp_path, dump=None):
    """The run killed (SIGKILL, every process) after its first checkpoint,
    then started again with the same command (dumping what XLA compiles to
    `dump`); returns the second start's outputs."""
    ports = free_local_ports(2)
    count = 2 if kind == "worker" else 1
    processes = [launch(kind, output, tmp_path, i, ports) for i in range(count)]
    # The state file names a checkpoint only once it is complete; the .index
    # file alone can appear before (a kill then leaves nothing to resume).
    state = output / "checkpoints" / "checkpoint"
    deadline = time.time() + 300
    while time.time() < deadline and all(p.poll() is None for p in processes):
        if state.exists() and "ckpt-10" in state.read_text():
            break
        time.sleep(0.05)
    for process in processes:
        process.kill()
        process.communicate()
    assert (output / "checkpoints" / "ckpt-10.index").exists(), "no first checkpoint"
    assert not (output / "preset").exists()
    return run(kind, output, tmp_path, dump=dump)


def resumed_step(stdout):
    return int(stdout.split("Resuming from")[1].split("at step ")[1].split(".")[0])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One uninterrupted run on one device, then one killed-and-resumed run
    per strategy, all with global batch 8 for 20 steps; the resumed
    multi-replica runs dump what XLA compiled. (The multi-replica runs are
    compared with the one-device run only: a separate uninterrupted run of
    each would add two process starts and compilations and prove nothing
    that the comparison does not.)"""
    tmp_path = tmp_path_factory.mktemp("runs")
    write_inputs(tmp_path)
    straight = run("single", tmp_path / "straight", tmp_path)
    results = dict(
        straight=preset_weights(tmp_path / "straight" / "preset"),
        summary=json.loads(straight[0][straight[0].index("{") :]),
    )
    for kind in ("single", "mirrored", "worker"):
        dump = tmp_path / f"xla_{kind}" if kind != "single" else None
        resumed = killed_and_resumed(kind, tmp_path / f"{kind}_killed", tmp_path, dump=dump)
        results[kind] = dict(
            resumed=preset_weights(tmp_path / f"{kind}_killed" / "preset"),
            resumed_at=resumed_step(resumed[0]),
            summaries=[json.loads(out[out.index("{") :]) for out in resumed],
            dumps=[n for d in tmp_path.glob(f"xla_{kind}_*") for n in os.listdir(d)],
        )
    # The uninterrupted run's command once more.
    results["again"] = run("single", tmp_path / "straight", tmp_path)[0]
    results["tmp_path"] = tmp_path
    return results


def assert_same_weights(first, second, atol=1e-5):
    assert len(first) == len(second) > 0
    print(f"largest difference {max(np.abs(a - b).max() for a, b in zip(first, second)):.1e}")
    for a, b in zip(first, second):
        np.testing.assert_allclose(a, b, rtol=0, atol=atol)


def test_training_moved_the_weights(runs):
    from convbert_keras import ConvBertBackbone

    keras.utils.set_random_seed(0)
    initial = ConvBertBackbone(**TINY).get_weights()
    moved = max(np.abs(a - b).max() for a, b in zip(runs["straight"], initial))
    print(f"moved {moved:.1e}")
    assert moved > 1e-2


@pytest.mark.parametrize("kind", ["single", "mirrored", "worker"])
def test_killed_run_resumes_to_the_weights_of_an_uninterrupted_one(runs, kind):
    # Same step, learning rate, data position and random streams; on two
    # replicas also the same global batches, masks, dropout and loss
    # normalisation.
    assert runs[kind]["resumed_at"] in (10, 20)
    # Bit for bit on one device; replicas sum in another order.
    assert_same_weights(
        runs["straight"], runs[kind]["resumed"], atol=0 if kind == "single" else 1e-6
    )
    for summary in runs[kind]["summaries"]:
        assert summary["steps"] == 20
        np.testing.assert_allclose(
            summary["metrics"]["loss"], runs["summary"]["metrics"]["loss"], rtol=1e-4
        )


@pytest.mark.parametrize("kind", ["mirrored", "worker"])
def test_replica_steps_are_compiled_with_xla(runs, kind):
    # XLA dumps a module only for what it compiled: each replica's forward
    # and backward pass; on each of the 2 workers.
    compiled = [n for n in runs[kind]["dumps"] if n.endswith("before_optimizations.txt")]
    assert sum("replica_gradients" in n for n in compiled) >= (2 if kind == "worker" else 1)


def test_a_finished_run_says_so_and_exits_0(runs):
    assert "is complete (20 of 20 steps); nothing to train" in runs["again"]
    summary = json.loads(runs["again"][runs["again"].index("{") :])
    assert summary["steps"] == 20


def damaged_copy(runs, name, damage):
    """The uninterrupted run's folder copied without its preset, with
    `damage(checkpoints folder)` done to its checkpoints."""
    tmp_path = runs["tmp_path"]
    copy = tmp_path / name
    shutil.copytree(tmp_path / "straight", copy)
    shutil.rmtree(copy / "preset")
    damage(copy / "checkpoints")
    return copy


def truncate(path):
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


@pytest.mark.parametrize(
    "damage",
    [
        lambda folder: truncate(folder / "ckpt-20.data-00000-of-00001"),
        lambda folder: truncate(folder / "ckpt-20.index"),
        lambda folder: os.remove(folder / "ckpt-20.data-00000-of-00001"),
    ],
    ids=["truncated data", "truncated index", "deleted data"],
)
def test_an_unreadable_newest_checkpoint_is_skipped_with_a_warning(runs, damage, capsys):
    # As a full disk or a node lost while its file system flushed leaves it.
    output = damaged_copy(runs, f"damaged_{len(os.listdir(runs['tmp_path']))}", damage)
    argv = pretrain_command(
        runs["tmp_path"] / "corpus.txt", runs["tmp_path"] / "config.json", output
    )
    printed = printed_by(main, argv[2:])
    warning = capsys.readouterr().err
    assert f"warning: skipping checkpoint {output / 'checkpoints' / 'ckpt-20'}" in warning
    assert "cannot be read" in warning
    assert resumed_step(printed) == 10
    # Resumed exactly from the checkpoint before: the weights of the
    # uninterrupted run, bit for bit.
    assert_same_weights(runs["straight"], preset_weights(output / "preset"), atol=0)


def test_no_readable_checkpoint_is_an_error_naming_the_folder_and_the_fix(runs, capsys):
    def damage(folder):
        truncate(folder / "ckpt-10.data-00000-of-00001")
        truncate(folder / "ckpt-20.data-00000-of-00001")

    output = damaged_copy(runs, "all_damaged", damage)
    argv = pretrain_command(
        runs["tmp_path"] / "corpus.txt", runs["tmp_path"] / "config.json", output
    )
    with pytest.raises(SystemExit) as exit_info:
        main(argv[2:])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert f"None of the 2 checkpoints in {output / 'checkpoints'} can be read" in error
    assert "(ckpt-20, ckpt-10)" in error and f"delete {output / 'checkpoints'}" in error


def test_one_process_per_run_folder_and_a_killed_holder_is_taken_over(runs):
    tmp_path = runs["tmp_path"]
    output = tmp_path / "in_use"
    corpus, config = tmp_path / "corpus.txt", tmp_path / "config.json"
    # Long enough to be training still while a second process starts.
    command = pretrain_command(corpus, config, output, steps=600)
    first = subprocess.Popen(
        command, env=script_environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    lock = output / "run.lock"
    deadline = time.time() + 120
    while time.time() < deadline and not (lock.exists() and lock.read_text()):
        time.sleep(0.05)
    second = subprocess.run(
        command, env=script_environment(), capture_output=True, text=True, timeout=300
    )
    assert first.poll() is None, "the first run ended before the second one was refused"
    assert second.returncode == 2
    holder = f"process {first.pid} on {socket.gethostname()}"
    assert f"error: {output} is in use: {holder}" in second.stderr
    assert not (output / "preset").exists()
    # SIGKILL leaves the lock file written; its flock goes with the process.
    first.kill()
    first.communicate()
    assert json.loads(lock.read_text())["pid"] == first.pid
    third = subprocess.run(
        command, env=script_environment(), capture_output=True, text=True, timeout=600
    )
    assert third.returncode == 0, third.stderr[-3000:]
    assert f"warning: {output} was left locked by {holder}" in third.stderr
    assert (output / "preset").is_dir()
    # Released at the end: emptied, so the next run takes no one over.
    assert lock.read_text() == ""


def test_a_diverged_loss_stops_the_run_naming_the_step_and_saves_nothing(runs, capsys):
    import tensorflow as tf

    tmp_path = runs["tmp_path"]
    output = tmp_path / "diverged"
    argv = pretrain_command(tmp_path / "corpus.txt", tmp_path / "config.json", output)[2:]
    # A learning rate that overflows the weights within a few steps.
    argv[argv.index("--learning-rate") + 1] = "1e30"
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "error: The training loss is nan at step 10: the run diverged" in error
    assert "It stopped without saving; it had saved no checkpoint yet." in error
    # Neither the diverged state nor a preset was written.
    assert tf.train.latest_checkpoint(str(output / "checkpoints")) is None
    assert not (output / "preset").exists()
