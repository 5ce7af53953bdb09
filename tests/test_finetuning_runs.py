"""Fine-tuning runs in separate processes: killed mid-epoch and resumed to
the weights and records of an uninterrupted run, and on two devices
(MirroredStrategy) with XLA-compiled replica steps and the weights of one
device; and the finished run's command again (in the test process)."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from support import SHALLOW
from support import VOCAB
from support import printed_by
from support import script_environment

from convbert_keras.cli.finetune import main
from convbert_keras.lab.benchmark import with_xla_dump

pytestmark = pytest.mark.slow

ROOT = os.path.join(os.path.dirname(__file__), "..")
STEPS_PER_EPOCH = 8  # 64 training rows in batches of 8


def environment(dump=None):
    env = script_environment()
    return with_xla_dump(env, dump) if dump else env


def write_inputs(tmp_path):
    import keras

    from convbert_keras import ConvBertBackbone
    from convbert_keras import ConvBertTokenizer

    rng = np.random.default_rng(0)
    for name in ("train", "dev", "test"):
        with open(tmp_path / f"{name}.jsonl", "w", encoding="utf-8") as f:
            for _ in range(64):
                words = rng.choice(["the", "movie", "plot", "good", "bad", "was"], 5)
                label = "pos" if "good" in words else "neg"
                f.write(json.dumps({"review": " ".join(words), "sentiment": label}) + "\n")
    keras.utils.set_random_seed(0)
    preset = str(tmp_path / "preset")
    ConvBertBackbone(**dict(SHALLOW, max_sequence_length=16)).save_to_preset(preset)
    ConvBertTokenizer(vocabulary=VOCAB).save_to_preset(preset)


def command(tmp_path, output, mirrored=False):
    strategy = ["--strategy", "mirrored", "--cpu-devices", "2"] if mirrored else []
    return [
        sys.executable,
        os.path.join(ROOT, "scripts", "finetune.py"),
        *strategy,
        "--train",
        str(tmp_path / "train.jsonl"),
        "--validation",
        str(tmp_path / "dev.jsonl"),
        "--test",
        str(tmp_path / "test.jsonl"),
        "--text-columns",
        "review",
        "--label-column",
        "sentiment",
        "--labels",
        "neg",
        "pos",
        "--preset",
        str(tmp_path / "preset"),
        "--output",
        str(output),
        "--epochs",
        "3",
        "--batch-size",
        "8",
        "--learning-rate",
        "5e-3",
        "--sequence-length",
        "16",
        "--checkpoint-every",
        "3",
    ]


def run(tmp_path, output, mirrored=False, dump=None):
    """The script's output. A one-device run goes in this process: the
    script's `main` with the same arguments, less a TensorFlow start-up (two
    devices need a process of their own: devices are fixed at start-up)."""
    if not mirrored:
        return printed_by(main, command(tmp_path, output)[2:])
    result = subprocess.run(
        command(tmp_path, output, mirrored),
        env=environment(dump),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def checkpoint_variables(path):
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(path))
    return {
        name: reader.get_tensor(name)
        for name in reader.get_variable_to_shape_map()
        if "save_counter" not in name and "_CHECKPOINTABLE_OBJECT_GRAPH" not in name
    }


def kill_after_mid_epoch_checkpoint(tmp_path, output):
    """SIGKILL once the step-9 checkpoint (mid-epoch 2) is written, and
    leave the folder as a kill just after that save leaves it: later
    checkpoints gone, while results.json may already hold epoch 2."""
    import tensorflow as tf

    process = subprocess.Popen(
        command(tmp_path, output),
        env=environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    state = output / "checkpoints" / "checkpoint"
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        if state.exists() and "ckpt-9" in state.read_text():
            break
        time.sleep(0.01)
    process.kill()
    process.wait()
    checkpoints = output / "checkpoints"
    assert (checkpoints / "ckpt-9.index").exists(), "the run did not reach step 9"
    for path in checkpoints.glob("ckpt-*"):
        if int(path.name.split("-")[1].split(".")[0]) > 9:
            path.unlink()
    tf.compat.v1.train.update_checkpoint_state(str(checkpoints), str(checkpoints / "ckpt-9"))
    return checkpoint_variables(checkpoints / "ckpt-9")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("finetune_runs")
    write_inputs(tmp_path)
    straight = run(tmp_path, tmp_path / "straight")
    at_kill = kill_after_mid_epoch_checkpoint(tmp_path, tmp_path / "killed")
    resumed = run(tmp_path, tmp_path / "killed")
    mirrored = run(tmp_path, tmp_path / "mirrored", mirrored=True, dump=tmp_path / "xla")
    again = run(tmp_path, tmp_path / "straight")
    return dict(
        tmp_path=tmp_path,
        straight=straight,
        resumed=resumed,
        mirrored=mirrored,
        again=again,
        at_kill=at_kill,
    )


def final(runs, name):
    return checkpoint_variables(
        runs["tmp_path"] / name / "checkpoints" / f"ckpt-{3 * STEPS_PER_EPOCH}"
    )


def results(runs, name):
    return json.loads((runs["tmp_path"] / name / "results.json").read_text())


def assert_same(first, second, atol=1e-5):
    assert sorted(first) == sorted(second) and len(first) > 10
    print(f"largest difference {max(np.abs(first[n] - second[n]).max() for n in first):.1e}")
    for name in first:
        np.testing.assert_allclose(first[name], second[name], rtol=0, atol=atol, err_msg=name)


def test_killed_mid_epoch_resumes_to_the_uninterrupted_run(runs):
    assert "Resuming from" in runs["resumed"] and "at step 9." in runs["resumed"]
    assert_same(final(runs, "straight"), final(runs, "killed"), atol=0)
    moved = max(
        np.abs(final(runs, "killed")[k] - v).max()
        for k, v in runs["at_kill"].items()
        if v.dtype.kind == "f"
    )
    assert moved > 1e-3
    # One record per epoch, the same as the uninterrupted run's.
    straight, killed = results(runs, "straight"), results(runs, "killed")
    assert [e["epoch"] for e in killed["epochs"]] == [1, 2, 3]
    for a, b in zip(straight["epochs"], killed["epochs"]):
        assert a["validation"] == pytest.approx(b["validation"], abs=1e-6)
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
    assert straight["best"] == killed["best"] and straight["test"] == killed["test"]


def test_the_script_prints_what_it_records_and_a_finished_run_says_so(runs):
    saved = results(runs, "straight")
    assert [e["epoch"] for e in saved["epochs"]] == [1, 2, 3]
    best = saved["epochs"][saved["best"]["epoch"] - 1]
    scores = [e["validation"]["accuracy"] for e in saved["epochs"]]
    assert saved["best"]["score"] == best["validation"]["accuracy"] == max(scores)
    assert set(saved["test"]["test"]) == {"accuracy", "f1"}
    for output in (runs["straight"], runs["again"]):
        printed = json.loads(output[output.index("{") :])
        assert printed["best"] == saved["best"] and printed["test"] == saved["test"]
    assert "is complete; nothing to train" in runs["again"]


def test_two_devices_compile_replica_steps_and_end_where_one_does(runs):
    dumps = os.listdir(runs["tmp_path"] / "xla")
    assert any("replica_gradients" in n and n.endswith("before_optimizations.txt") for n in dumps)
    assert_same(final(runs, "straight"), final(runs, "mirrored"))


def test_a_diverged_loss_stops_the_run_naming_the_step(runs, capsys):
    output = runs["tmp_path"] / "diverged"
    argv = command(runs["tmp_path"], output)[2:]
    # A learning rate that overflows the weights within a few steps.
    argv[argv.index("--learning-rate") + 1] = "1e30"
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "error: The training loss is nan at step 3: the run diverged" in error
    assert not list((output / "checkpoints").glob("ckpt-*"))
    assert not (output / "preset").exists()
