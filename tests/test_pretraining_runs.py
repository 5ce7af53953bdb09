"""Pretraining runs in separate processes: killed and resumed, on two
devices, on two workers."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from test_pretraining import SENTENCES
from test_pretraining import TINY
from test_pretraining import VOCAB

pytestmark = pytest.mark.slow

ROOT = os.path.join(os.path.dirname(__file__), "..")
# The tiny model at length 16, on the same sentences as the in-process tests.
TINY = dict(TINY, max_sequence_length=16)


def environment():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    env.pop("TF_CONFIG", None)
    return env


def write_inputs(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES * 20), encoding="utf-8")
    config = tmp_path / "config.json"
    config.write_text(json.dumps(TINY), encoding="utf-8")
    return corpus, config


def pretrain_command(corpus, config, output, steps=30, extra=()):
    return [
        sys.executable, os.path.join(ROOT, "scripts", "pretrain.py"), "--corpus", str(corpus),
        "--config", str(config), "--vocabulary", VOCAB, "--output", str(output),
        "--steps", str(steps), "--checkpoint-every", "10", "--batch-size", "4",
        "--sequence-length", "16", "--learning-rate", "2e-3", *extra,
    ]


def preset_weights(preset):
    from convbert_keras import ConvBertBackbone

    return [np.asarray(w) for w in ConvBertBackbone.from_preset(str(preset)).get_weights()]


def test_killed_run_resumes_where_its_checkpoint_left_off(tmp_path):
    corpus, config = write_inputs(tmp_path)
    # Reference: the same run, never interrupted.
    subprocess.run(
        pretrain_command(corpus, config, tmp_path / "straight"), env=environment(),
        check=True, capture_output=True,
    )
    command = pretrain_command(corpus, config, tmp_path / "killed")
    process = subprocess.Popen(command, env=environment(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    # The state file names a checkpoint only once it is complete; the .index
    # file alone can appear before (a kill then leaves nothing to resume).
    state = tmp_path / "killed" / "checkpoints" / "checkpoint"
    checkpoint = tmp_path / "killed" / "checkpoints" / "ckpt-10.index"

    def saved():
        return state.exists() and "ckpt-10" in state.read_text()

    deadline = time.time() + 300
    while not saved() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert checkpoint.exists(), "the run did not reach its first checkpoint"
    assert not (tmp_path / "killed" / "preset").exists()

    result = subprocess.run(command, env=environment(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    resumed_at = int(result.stdout.split("Resuming from")[1].split("at step ")[1].split(".")[0])
    assert resumed_at in (10, 20)
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert summary["steps"] == 30
    # Same step, learning rate, data position and random streams: the
    # resumed run ends exactly where the uninterrupted one does.
    for a, b in zip(preset_weights(tmp_path / "straight" / "preset"),
                    preset_weights(tmp_path / "killed" / "preset")):
        np.testing.assert_allclose(a, b, atol=1e-5)


MIRRORED = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from convbert_keras import ConvBertTokenizer
from convbert_keras.data.corpus import text_file_documents
from convbert_keras.pretraining import pretrain
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
corpus, config, vocab, output = sys.argv[1:]
result = pretrain(lambda: text_file_documents([corpus]), ConvBertTokenizer(vocabulary=vocab),
                  json.load(open(config)), output, 40, batch_size=8, sequence_length=16,
                  learning_rate=2e-3, checkpoint_every=10, strategy=strategy, verbose=0)
result.pop("discriminator")
print(json.dumps({"replicas": strategy.num_replicas_in_sync, **result}))
"""


def test_mirrored_strategy_over_two_cpu_devices(tmp_path):
    corpus, config = write_inputs(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED, str(corpus), str(config), VOCAB, str(tmp_path / "run")],
        env=environment(), capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["replicas"] == 2 and summary["steps"] == 40
    loss = summary["history"]["loss"]
    assert loss[-1] < loss[0]
    assert preset_weights(tmp_path / "run" / "preset")


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


WORKER = """
import json, sys
from convbert_keras.pretraining import make_strategy
strategy = make_strategy("multi_worker")
import numpy as np
from convbert_keras import ConvBertTokenizer
from convbert_keras.data.corpus import text_file_documents
from convbert_keras.pretraining import pretrain
corpus, config, vocab, output, weights = sys.argv[1:]
result = pretrain(lambda: text_file_documents([corpus]), ConvBertTokenizer(vocabulary=vocab),
                  json.load(open(config)), output, 20, batch_size=8, sequence_length=16,
                  learning_rate=2e-3, checkpoint_every=10, strategy=strategy, verbose=0)
np.savez(weights, *result.pop("discriminator").get_weights())
print(json.dumps(result))
"""


def test_two_workers_train_together(tmp_path):
    corpus, config = write_inputs(tmp_path)
    ports = free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    processes = []
    for index in range(2):
        env = environment()
        env["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        processes.append(subprocess.Popen(
            [sys.executable, "-c", WORKER, str(corpus), str(config), VOCAB,
             str(tmp_path / "run"), str(tmp_path / f"w{index}.npz")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))
    outputs = [p.communicate(timeout=600) for p in processes]
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-3000:]
    summaries = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    for summary in summaries:
        assert summary["steps"] == 20
        assert summary["history"]["loss"][-1] < summary["history"]["loss"][0]
    # Synchronous training: both workers report the same all-reduced losses.
    np.testing.assert_allclose(
        summaries[0]["history"]["loss"], summaries[1]["history"]["loss"], rtol=1e-4
    )
    first, second = np.load(tmp_path / "w0.npz"), np.load(tmp_path / "w1.npz")
    assert len(first.files) == len(second.files) > 0
    for name in first.files:
        np.testing.assert_array_equal(first[name], second[name])
    # Only the chief writes the preset, and it loads.
    assert preset_weights(tmp_path / "run" / "preset")
