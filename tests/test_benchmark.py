import json
import os
import subprocess
import sys
import time

import pytest

from convbert_keras import convbert_config
from convbert_keras.lab import benchmark


def test_flop_count_hand_computed():
    # H=4, N=2 (one attention head of 2 and one conv head), K=3, I=8:
    # qkv 24 + attention 2*L*A=8 + span key (4*3 + 4*2)=20 + kernel 6
    # + conv values 8 + conv 6 + output 16 + FFN 64 = 152 MACs per token;
    # head 4*4 + 4*2 = 24 per sequence.
    config = dict(
        vocabulary_size=10,
        num_layers=1,
        num_heads=2,
        hidden_dim=4,
        embedding_dim=4,
        intermediate_dim=8,
        conv_kernel_size=3,
    )
    assert benchmark.convbert_forward_flops(config, batch_size=1, length=2) == 2 * (152 * 2 + 24)


@pytest.mark.parametrize("size, gflop", [("small", 39), ("base", 340)])
def test_flop_count_matches_the_published_estimates(size, gflop):
    # Batch 16 x 128: the figures quoted in the performance issue.
    flops = benchmark.convbert_forward_flops(convbert_config(size), 16, 128)
    assert abs(flops / 1e9 - gflop) / gflop < 0.03


def test_bert_does_more_work_than_convbert_and_grows_quadratically():
    config = convbert_config("base")
    for length in (128, 512, 2048):
        assert benchmark.bert_forward_flops(config, 1, length) > benchmark.convbert_forward_flops(
            config, 1, length
        )
    # Attention is half as wide in ConvBERT: its quadratic term is half of BERT's.
    conv_growth = benchmark.convbert_forward_flops(
        config, 1, 2048
    ) - 2 * benchmark.convbert_forward_flops(config, 1, 1024)
    bert_growth = benchmark.bert_forward_flops(config, 1, 2048) - 2 * benchmark.bert_forward_flops(
        config, 1, 1024
    )
    assert conv_growth == pytest.approx(bert_growth / 2, rel=0.01)


def synthetic_report():
    def row(framework, mode, ms, mb):
        return {
            "framework": framework,
            "size": "small",
            "mode": mode,
            "batch_size": 16,
            "length": 128,
            "flops": 39e9,
            "ms_per_step": ms,
            "tokens_per_s": 2048 / ms * 1000,
            "peak_memory_mb": mb,
            "peak_memory_with_warmup_mb": mb,
            "gflops": 39 / ms * 1000,
            "matmul_fraction": 39 / ms * 1000 / 100,
        }

    return {
        "matmul_gflops": 100.0,
        "results": [
            row("convbert_keras", "infer", 500.0, 900.0),
            row("torch", "infer", 1000.0, 1800.0),
            {
                "framework": "keras_hub_bert",
                "size": "small",
                "mode": "infer",
                "batch_size": 16,
                "length": 128,
                "flops": 40e9,
                "error": "out of memory",
            },
        ],
    }


def test_summary_table_states_ratios_and_errors():
    table = benchmark.summary_table(synthetic_report())
    assert "Matmul reference: 100.0 GFLOP/s" in table
    assert "2.00x faster, 0.50x memory" in table
    assert "error: out of memory" in table


def test_write_report_writes_json_table_and_chart(tmp_path):
    paths = benchmark.write_report(synthetic_report(), str(tmp_path))
    with open(paths["results.json"]) as f:
        assert json.load(f)["matmul_gflops"] == 100.0
    with open(paths["chart.png"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(paths["summary.md"]) > 0


@pytest.mark.slow
def test_harness_measures_every_framework_end_to_end():
    report = benchmark.run_benchmark(
        sizes=("small",),
        lengths=(16,),
        batch_sizes=(2,),
        modes=("infer",),
        warmup=1,
        repeats=1,
        config_overrides={"num_layers": 1},
        log=lambda _: None,
    )
    rows = {r["framework"]: r for r in report["results"]}
    assert set(rows) == set(benchmark.DEFAULT_FRAMEWORKS)
    for row in rows.values():
        assert "error" not in row, row
        assert row["ms_per_step"] > 0 and row["peak_memory_mb"] > 0
    # XLA's planned scratch memory, for the cases XLA compiles.
    for framework in ("convbert_keras", "keras_hub_bert"):
        assert rows[framework]["xla_buffers_mb"] > 0
    assert "xla_buffers_mb" not in rows["torch"]
    for anchor in ("torch", "torch_compiled"):
        assert rows["convbert_keras"][f"speedup_vs_{anchor}"] == pytest.approx(
            rows[anchor]["ms_per_step"] / rows["convbert_keras"]["ms_per_step"]
        )
    # Inductor's compilation, in the first step, is reported apart.
    assert (
        rows["torch_compiled"]["compile_seconds"]
        > 10 * rows["torch_compiled"]["ms_per_step"] / 1000
    )
    assert "compile_seconds" not in rows["torch"]
    assert "compiled in" in benchmark.summary_table(report)
    assert report["matmul_gflops"] > 0


def test_xla_temp_bytes_reads_the_largest_scratch_buffer_of_the_step(tmp_path):
    def write(name, sizes):
        lines = [f"allocation {i}: size {n}, {kind}:" for i, (n, kind) in enumerate(sizes)]
        (tmp_path / name).write_text("\n".join(lines))

    write(
        "module_0001.a_inference_one_step_on_data_12__.7.cpu_after_optimizations-buffer-assignment.txt",
        [(4096, "parameter 0"), (1000, "preallocated-temp"), (9999, "constant")],
    )
    write(
        "module_0002.a_inference_one_step_on_data_30__.9.cpu_after_optimizations-buffer-assignment.txt",
        [(2500, "preallocated-temp")],
    )
    write(
        "module_0003.other_function.cpu_after_optimizations-buffer-assignment.txt",
        [(10**9, "preallocated-temp")],
    )
    assert benchmark.xla_temp_bytes(str(tmp_path)) == 2500
    assert benchmark.xla_temp_bytes(str(tmp_path), module="no_such_function") is None


def test_unknown_backend_is_named():
    with pytest.raises(ValueError, match="Unknown backend 'mxnet'"):
        benchmark.run_benchmark(backend="mxnet", log=lambda _: None)


# Installed in every process started with it on PYTHONPATH (as
# `sitecustomize`): TensorFlow cannot be imported, as on a machine without it.
NO_TENSORFLOW = """
import importlib.abc, sys

class NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("tensorflow", "tensorflow_text"):
            raise ImportError(f"{name} is not installed here")

sys.meta_path.insert(0, NoTensorFlow())
"""


@pytest.mark.slow
def test_jax_backend_times_ours_on_a_machine_without_tensorflow(tmp_path, monkeypatch):
    (tmp_path / "sitecustomize.py").write_text(NO_TENSORFLOW)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    blocked = subprocess.run([sys.executable, "-c", "import tensorflow"], capture_output=True)
    assert blocked.returncode != 0  # the stand-in for a machine without TensorFlow works
    report = benchmark.run_benchmark(
        sizes=("small",),
        lengths=(16,),
        batch_sizes=(2,),
        modes=("train",),
        frameworks=("convbert_keras",),
        warmup=1,
        repeats=1,
        config_overrides={"num_layers": 1},
        backend="jax",
        log=lambda _: None,
    )
    assert report["backend"] == "jax" and report["matmul_gflops"] > 0
    (row,) = report["results"]
    assert "error" not in row, row
    assert row["backend"] == "jax" and row["mode"] == "train" and row["ms_per_step"] > 0


def test_strategy_table_gives_the_xla_speed_up():
    from convbert_keras.lab.strategy_benchmark import summary_table

    table = summary_table({"2 workers": {"xla": 0.5, "no_xla": 0.8}})
    assert table.splitlines()[-1] == "| 2 workers | 0.500 | 0.800 | 1.60x |"


LINUX = pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc")


@LINUX
def test_a_worker_past_the_memory_limit_is_stopped_and_reported():
    # Importing TensorFlow alone takes the worker far past 100 MB.
    spec = {"framework": "matmul", "backend": "tensorflow", "warmup": 1, "repeats": 1}
    measured = benchmark.run_worker(spec, max_memory_mb=100)
    assert measured["out_of_memory"] is True
    assert "passed the 100 MB limit" in measured["error"]


def test_a_worker_past_its_time_is_stopped_and_reported():
    spec = {"framework": "matmul", "backend": "tensorflow", "warmup": 1, "repeats": 1}
    measured = benchmark.run_worker(spec, timeout=0.5)
    assert measured == {"error": "timed out after 0.5 s"}


class FakeWorkers:
    """Stands in for `run_worker`: ours takes 100 ms, the others 200 ms;
    keras-hub's BERT does not fit from 512 tokens on. Call number `crash_at`
    crashes; call number `kill_at` raises KeyboardInterrupt (a kill)."""

    def __init__(self, crash_at=None, kill_at=None):
        self.calls, self.crash_at, self.kill_at = [], crash_at, kill_at

    def __call__(self, spec, max_memory_mb=None):
        self.calls.append((spec["framework"], spec.get("mode"), spec.get("length")))
        if len(self.calls) == self.kill_at:
            raise KeyboardInterrupt
        if len(self.calls) == self.crash_at:
            return {"error": "Segmentation fault"}
        if spec["framework"] == "matmul":
            return {"gflops": 100.0}
        if spec["framework"] == "keras_hub_bert" and spec["length"] >= 512:
            return {"error": "out of memory: ...", "out_of_memory": True}
        seconds = 0.1 if spec["framework"] == "convbert_keras" else 0.2
        return {"seconds": seconds, "peak_memory_mb": 1000.0, "peak_memory_with_warmup_mb": 1000.0}


def test_a_worker_that_dies_after_xla_planned_too_much_is_out_of_memory(tmp_path, monkeypatch):
    # A stand-in worker: XLA's plan in the dump folder, then TensorFlow's
    # death when the allocation fails.
    worker = tmp_path / "worker.py"
    worker.write_text(
        "import os, sys\n"
        "dump = os.environ['XLA_FLAGS'].split('--xla_dump_to=')[1].split()[0]\n"
        "name = 'module_1.a_inference_one_step_on_data_2__.cpu-buffer-assignment.txt'\n"
        "with open(os.path.join(dump, name), 'w') as f:\n"
        "    f.write('allocation 0: size 3145728000, preallocated-temp:')\n"
        "sys.stderr.write('double free or corruption (!prev)\\n')\n"
        "os.abort()\n"
    )
    monkeypatch.setattr(benchmark, "WORKER", str(worker))
    spec = {"framework": "keras_hub_bert"}
    measured = benchmark.run_worker(spec, max_memory_mb=2000)
    assert measured["out_of_memory"] is True
    assert "XLA planned 3000 MB of buffers, more than the 2000 MB limit" in measured["error"]
    assert "double free" in measured["error"]
    # Within the limit, the same death is a crash, not a lack of memory.
    assert benchmark.run_worker(spec, max_memory_mb=4000) == {
        "error": "double free or corruption (!prev)"
    }


def test_a_worker_killed_by_someone_else_is_out_of_memory(tmp_path, monkeypatch):
    # The kernel's out-of-memory killer sends SIGKILL; so does this worker.
    worker = tmp_path / "worker.py"
    worker.write_text("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n")
    monkeypatch.setattr(benchmark, "WORKER", str(worker))
    measured = benchmark.run_worker({"framework": "torch"})
    assert measured["out_of_memory"] is True
    assert "SIGKILL the harness did not send" in measured["error"]


@LINUX
def test_an_interrupted_harness_leaves_no_worker_behind(tmp_path, monkeypatch):
    # A worker that starts a process of its own (as inductor starts compile
    # workers) and waits; the harness is interrupted (Ctrl-C) while it runs.
    pids = tmp_path / "pids"
    worker = tmp_path / "worker.py"
    worker.write_text(
        "import os, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
        "time.sleep(60)\n"
    )
    monkeypatch.setattr(benchmark, "WORKER", str(worker))

    def interrupted(pid):
        while not pids.exists() or not pids.read_text():
            time.sleep(0.01)
        raise KeyboardInterrupt

    monkeypatch.setattr(benchmark, "_resident_mb", interrupted)
    with pytest.raises(KeyboardInterrupt):
        benchmark.run_worker({"framework": "torch"}, max_memory_mb=1000)
    worker_pid, child_pid = map(int, pids.read_text().split())
    with pytest.raises(ProcessLookupError):
        os.kill(worker_pid, 0)  # killed and reaped
    # Killed with the worker's process group: gone, or a zombie waiting
    # for the process that adopted it to reap it.
    deadline = time.time() + 10
    while time.time() < deadline and not dead(child_pid):
        time.sleep(0.05)
    assert dead(child_pid)


def dead(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_killed_sweep_goes_on_where_it_stopped(tmp_path, monkeypatch):
    progress = str(tmp_path / "results.json")
    sweep = dict(
        lengths=(128, 512),
        batch_sizes=(1,),
        frameworks=("convbert_keras", "convbert_keras_remat", "keras_hub_bert"),
        warmup=1,
        repeats=1,
        max_memory_mb=2000,
        progress=progress,
        log=lambda _: None,
    )
    killed = FakeWorkers(crash_at=4, kill_at=5)
    monkeypatch.setattr(benchmark, "run_worker", killed)
    with pytest.raises(KeyboardInterrupt):
        benchmark.run_benchmark(**sweep)
    with open(progress) as f:
        assert len(json.load(f)["results"]) == 3  # killed in the fourth measurement
    again = FakeWorkers()
    monkeypatch.setattr(benchmark, "run_worker", again)
    report = benchmark.run_benchmark(**sweep)
    # No matmul again (the kept rows' fractions are against the saved one);
    # the crash is measured again; remat is not run for inference, which it
    # does not change.
    assert again.calls == [
        ("keras_hub_bert", "train", 128),
        ("convbert_keras", "infer", 128),
        ("keras_hub_bert", "infer", 128),
        ("convbert_keras", "train", 512),
        ("convbert_keras_remat", "train", 512),
        ("keras_hub_bert", "train", 512),
        ("convbert_keras", "infer", 512),
        ("keras_hub_bert", "infer", 512),
    ]
    rows = {(r["framework"], r["mode"], r["length"]): r for r in report["results"]}
    assert len(rows) == 10
    # The crash measured again stands in its place, in the order of the loops.
    assert list(rows)[:3] == [
        ("convbert_keras", "train", 128),
        ("convbert_keras_remat", "train", 128),
        ("keras_hub_bert", "train", 128),
    ]
    # Ratios join rows measured before and after the kill.
    assert rows["convbert_keras", "infer", 128]["speedup_vs_keras_hub_bert"] == 2.0
    assert rows["convbert_keras", "train", 128]["speedup_vs_convbert_keras_remat"] == 2.0
    too_long = rows["keras_hub_bert", "train", 512]
    assert too_long["out_of_memory"] and too_long["memory_limit_mb"] == 2000
    assert "speedup_vs_keras_hub_bert" not in rows["convbert_keras", "train", 512]
    # Run a third time: nothing is measured again.
    third = FakeWorkers()
    monkeypatch.setattr(benchmark, "run_worker", third)
    assert benchmark.run_benchmark(**sweep)["results"] == report["results"]
    assert third.calls == []
    # With a higher limit, what did not fit under the lower one is tried again.
    higher = FakeWorkers()
    monkeypatch.setattr(benchmark, "run_worker", higher)
    benchmark.run_benchmark(**dict(sweep, max_memory_mb=4000))
    assert higher.calls == [("keras_hub_bert", "train", 512), ("keras_hub_bert", "infer", 512)]
    # The scaling chart draws what fitted and marks what did not.
    paths = benchmark.write_report(report, str(tmp_path / "report"))
    assert "scaling.png" not in paths  # two lengths: no curve
    report["results"] += [dict(r, length=2048) for r in report["results"] if r["length"] == 512]
    paths = benchmark.write_report(report, str(tmp_path / "report"))
    with open(paths["scaling.png"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert "error: out of memory" in benchmark.summary_table(report)


def test_a_folder_measured_with_other_settings_is_refused(tmp_path, capsys):
    from convbert_keras.cli.benchmark import main

    # Everything as this command would measure, but warm-up 2.
    settings = {"backend": "tensorflow", "warmup": 2, "repeats": 5, "config_overrides": {}}
    (tmp_path / "results.json").write_text(json.dumps({"settings": settings, "results": []}))
    with pytest.raises(SystemExit) as exit:
        main(["--warmup", "1", "--output", str(tmp_path)])
    assert exit.value.code == 2
    error = capsys.readouterr().err
    assert "other settings" in error and "measure into another folder" in error


def test_a_negative_memory_limit_is_refused(tmp_path, capsys):
    from convbert_keras.cli.benchmark import main

    with pytest.raises(SystemExit) as exit:
        main(["--max-memory-gb", "-1", "--output", str(tmp_path)])
    assert exit.value.code == 2
    assert "--max-memory-gb: must be 0 (no limit) or more, not -1" in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()
