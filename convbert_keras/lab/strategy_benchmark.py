"""Times a pretraining step under each `tf.distribute` strategy, with XLA
and without, in the same run.

Every case is `convbert-pretrain` (`python -m convbert_keras.cli.pretrain`)
in fresh processes (two for two workers, on localhost) on the same corpus
and model; the time per step is the median of the checkpoint intervals
after the first (which includes compiling), from the run's `learning_curve.json`.
"""

import json
import os
import subprocess
import sys

import numpy as np

from convbert_keras.distribute import free_local_ports

# The module rather than a path, so an installed wheel runs it too.
COMMAND = ("-m", "convbert_keras.cli.pretrain")
# (name, strategy options, processes)
CASES = (
    ("one device", [], 1),
    ("mirrored, 2 CPU devices", ["--strategy", "mirrored", "--cpu-devices", "2"], 1),
    ("2 workers", ["--strategy", "multi_worker"], 2),
)


def time_case(options, processes, jit, common, output, timeout=3600):
    """Seconds per step of one pretraining run (see the module)."""
    ports = free_local_ports(processes)
    running = []
    for index in range(processes):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        env.pop("TF_CONFIG", None)
        if processes > 1:
            env["TF_CONFIG"] = json.dumps(
                {
                    "cluster": {"worker": [f"localhost:{p}" for p in ports]},
                    "task": {"type": "worker", "index": index},
                }
            )
        command = [sys.executable, *COMMAND, *common, *options, "--output", output]
        if not jit:
            command.append("--no-xla")
        running.append(
            (
                command,
                subprocess.Popen(
                    command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
                ),
            )
        )
    try:
        for command, process in running:
            _, err = process.communicate(timeout=timeout)
            if process.returncode:
                raise RuntimeError(f"{' '.join(command)} failed:\n{err[-3000:]}")
    finally:
        # A failed worker leaves the other waiting for it.
        for _, process in running:
            if process.poll() is None:
                process.kill()
    with open(os.path.join(output, "learning_curve.json"), encoding="utf-8") as f:
        curve = json.load(f)
    if len(curve) < 2:
        raise ValueError(
            "Timing needs two intervals or more: pass `--steps` at least twice "
            "`--checkpoint-every`."
        )
    steps = curve[1]["step"] - curve[0]["step"]
    return float(np.median([r["interval_seconds"] for r in curve[1:]])) / steps


def time_strategies(common, output_dir, cases=CASES, log=print):
    """`{case name: {"xla": s/step, "no_xla": s/step}}` for `common`
    `scripts/pretrain.py` arguments (corpus, model, steps, batch, ...)."""
    report = {}
    for name, options, processes in cases:
        report[name] = {}
        for jit in (True, False):
            key = "xla" if jit else "no_xla"
            folder = os.path.join(output_dir, f"{name.replace(' ', '_').replace(',', '')}_{key}")
            report[name][key] = time_case(options, processes, jit, common, folder)
            log(f"{name}, {'XLA' if jit else 'no XLA'}: {report[name][key]:.3f} s/step")
    return report


def machine():
    """The CPU model and whether it has AVX-512 (ratios differ with it)."""
    model, flags = "unknown", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name") and model == "unknown":
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, {'AVX-512' if 'avx512f' in flags else 'no AVX-512'}"


def summary_table(report):
    """A Markdown table of `time_strategies`' report, with XLA's speed-up."""
    lines = ["| strategy | XLA s/step | no XLA s/step | XLA speed-up |", "|---|---|---|---|"]
    for name, times in report.items():
        lines.append(
            f"| {name} | {times['xla']:.3f} | {times['no_xla']:.3f} | "
            f"{times['no_xla'] / times['xla']:.2f}x |"
        )
    return "\n".join(lines)
