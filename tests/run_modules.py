"""Runs the test suite one module per pytest process, a few processes at a time.

A TensorFlow process keeps what it compiled (XLA programs, traced tf.data
functions) until it exits, so one pytest process grows with the suite (11 GB
for the whole of it). One process per module bounds that by the largest
module, and two at a time use both cores of a 2-core machine. The lighter
modules (each under 70 s) share processes of up to 70 s instead (peaks of
up to 2.7 GB): a process start (TensorFlow, keras-hub, collection) costs
about 3.7 s of CPU with the start-up module (STARTUP below; 5.6 s without),
and processes this short still keep both cores busy to the end of the run:
14 processes in all, where groups of up to 40 s made 18 (measured run ends:
22 s with one core idle at 70 s, 37 s at 60 s).

Prints each process's output as it finishes, with its wall time, its CPU
time (its own and its children's: above the wall time where TensorFlow runs
on both cores, below it where the process waits) and the peak resident memory
of its process (or of a process one of its tests started, if larger), then
the suite's wall time, CPU time and the largest peak. Exits 1 if a module
failed. Arguments after the options go to every pytest process:

    python tests/run_modules.py --jobs 2 -q -m "not slow"
"""

import argparse
import glob
import os
import subprocess
import sys
import tempfile
import time

TESTS = os.path.dirname(os.path.abspath(__file__))
# Every process of the suite, and every process its tests start, imports
# the sitecustomize module there (what TensorFlow and Keras import at
# start-up; see its docstring).
STARTUP = os.path.join(TESTS, "startup")
# Seconds each module took in a full run (2-core AVX-512 machine, two
# processes at a time); a module not listed counts as light.
SECONDS = {
    "test_demo.py": 125,
    "test_real_data.py": 100,
    "test_pretraining_runs.py": 113,
    "test_backends.py": 93,
    "test_finetuning.py": 78,
    "test_tasks.py": 74,
    "test_xla.py": 50,
    "test_finetuning_runs.py": 70,
    "test_export.py": 68,
    "test_question_answerer.py": 45,
    "test_pretraining.py": 58,
    "test_benchmark.py": 53,
    "test_lora_and_quantization.py": 36,
    "test_parity_full.py": 22,
    "test_tokenizer.py": 20,
    "test_backbone.py": 19,
    "test_convert.py": 19,
    "test_serving.py": 18,
    "test_task_declarations.py": 16,
    "test_parity_sensitive.py": 13,
    "test_vocabulary.py": 12,
    "test_remat.py": 10,
    "test_untrusted_inputs.py": 5,
    "test_hf_presets.py": 4,
    "test_comparison.py": 4,
    "test_litert.py": 2,
    "test_layers.py": 2,
    "test_pip_sources.py": 1,
    "test_compat.py": 1,
    "test_metrics.py": 1,
    "test_data.py": 1,
    "test_startup.py": 10,
    "test_progress.py": 6,
    "test_native_log.py": 20,
    "test_keras_hub_harness.py": 150,
    "test_layout.py": 3,
    "test_docs.py": 55,
    "test_docstrings.py": 50,
}
# Modules that take longer get a process of their own; lighter ones share
# processes of up to this many seconds.
HEAVY = 70
UNKNOWN = 30
# pytest's exit code when every test of a module is deselected.
NO_TESTS_COLLECTED = 5


def with_pythonpath(env, folder):
    """The environment `env` with `folder` first on its PYTHONPATH."""
    paths = [folder, *filter(None, [env.get("PYTHONPATH")])]
    return dict(env, PYTHONPATH=os.pathsep.join(paths))


def seconds(module):
    return SECONDS.get(os.path.basename(module), UNKNOWN)


def only_slow(module):
    """Whether every test of the module is marked slow (module-wide)."""
    with open(module, encoding="utf-8") as f:
        return any(line.strip() == "pytestmark = pytest.mark.slow" for line in f)


def process_groups(skip_slow=False):
    """The pytest processes to run, longest first: each heavy module alone,
    the light ones packed into processes of up to `HEAVY` seconds (small
    enough that no process is left running long after the others, whichever
    tests a marker selects). With `skip_slow`, modules whose every test is
    slow are left out rather than started to deselect everything."""
    modules = sorted(glob.glob(os.path.join(TESTS, "test_*.py")), key=seconds, reverse=True)
    if skip_slow:
        modules = [m for m in modules if not only_slow(m)]
    groups = []
    for module in modules:
        # A heavy module never fits: every group holds at least one module.
        room = [g for g in groups if sum(map(seconds, g)) + seconds(module) <= HEAVY]
        if room:
            room[0].append(module)
        else:
            groups.append([module])
    return sorted(groups, key=lambda group: sum(map(seconds, group)), reverse=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="pytest processes at a time")
    args, pytest_args = parser.parse_known_args(argv)

    marker = pytest_args[pytest_args.index("-m") + 1] if "-m" in pytest_args[:-1] else None
    pending = process_groups(skip_slow=marker == "not slow")
    count = sum(len(group) for group in pending)
    running = {}  # pid -> (modules, start time, output file)
    failed, largest, cpu_total = [], (0, None), 0.0
    env = with_pythonpath(os.environ, STARTUP)
    start = time.time()
    while pending or running:
        while pending and len(running) < args.jobs:
            group = pending.pop(0)
            output = tempfile.TemporaryFile(mode="w+")
            process = subprocess.Popen(
                [sys.executable, "-m", "pytest", *group, *pytest_args],
                stdout=output,
                stderr=subprocess.STDOUT,
                env=env,
            )
            running[process.pid] = (group, time.time(), output)
        # Reaped here rather than by Popen, to read the process's peak memory.
        pid, status, usage = os.wait4(-1, 0)
        if pid not in running:
            continue
        group, started, output = running.pop(pid)
        code = os.waitstatus_to_exitcode(status)
        peak_gb = usage.ru_maxrss / 2**20
        cpu = usage.ru_utime + usage.ru_stime
        cpu_total += cpu
        name = os.path.relpath(group[0], os.path.dirname(TESTS))
        if len(group) > 1:
            name = f"{len(group)} light modules ({', '.join(map(os.path.basename, group))})"
        largest = max(largest, (peak_gb, name))
        output.seek(0)
        sys.stdout.write(output.read())
        output.close()
        ok = code in (0, NO_TESTS_COLLECTED)
        if not ok:
            failed.append(name)
        print(
            f"== {name}: {'passed' if ok else f'FAILED (exit {code})'} in "
            f"{time.time() - started:.0f} s ({cpu:.0f} s CPU), peak {peak_gb:.1f} GB",
            flush=True,
        )
    print(
        f"== {count} modules in {time.time() - start:.0f} s ({cpu_total:.0f} s CPU); "
        f"largest process {largest[0]:.1f} GB ({largest[1] or '-'}); "
        f"{'failed: ' + ', '.join(failed) if failed else 'all passed'}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
