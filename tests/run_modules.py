"""Runs the test suite one module per pytest process, a few processes at a time.

A TensorFlow process keeps what it compiled (XLA programs, traced tf.data
functions) until it exits, so one pytest process grows with the suite (11 GB
for the whole of it). One process per module bounds that by the largest
module, and two at a time use both cores of a 2-core machine. The light
modules (each under 1 minute and 2 GB) share one process instead: a process
start (TensorFlow, keras-hub, collection) costs about 6 s.

Prints each process's output as it finishes, with its wall time and the peak
resident memory of its process (or of a process one of its tests started, if
larger), then the suite's wall time and the largest peak. Exits 1 if a module
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
# Seconds each heavy module took in a full run (2-core AVX-512 machine, two
# at a time): the longest start first, so the processes finish together.
HEAVY_SECONDS = {
    "test_pretraining_runs.py": 220, "test_finetuning.py": 185, "test_finetuning_runs.py": 150,
    "test_real_data.py": 145, "test_pretraining.py": 145, "test_demo.py": 145,
    "test_tasks.py": 140, "test_export.py": 90, "test_question_answerer.py": 75,
}
# The light modules together take about this long in their shared process.
LIGHT_SECONDS = 330
# pytest's exit code when every test of a module is deselected.
NO_TESTS_COLLECTED = 5


def process_groups():
    """The pytest processes to run, longest first: each heavy module alone,
    the other modules together."""
    modules = sorted(glob.glob(os.path.join(TESTS, "test_*.py")))
    heavy = [[m] for m in modules if os.path.basename(m) in HEAVY_SECONDS]
    light = [m for m in modules if os.path.basename(m) not in HEAVY_SECONDS]
    groups = heavy + ([light] if light else [])

    def seconds(group):
        return HEAVY_SECONDS.get(os.path.basename(group[0]), 0) if group is not light else LIGHT_SECONDS

    return sorted(groups, key=seconds, reverse=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="pytest processes at a time")
    args, pytest_args = parser.parse_known_args(argv)

    pending = process_groups()
    count = sum(len(group) for group in pending)
    running = {}  # pid -> (modules, start time, output file)
    failed, largest = [], (0, None)
    start = time.time()
    while pending or running:
        while pending and len(running) < args.jobs:
            group = pending.pop(0)
            output = tempfile.TemporaryFile(mode="w+")
            process = subprocess.Popen(
                [sys.executable, "-m", "pytest", *group, *pytest_args],
                stdout=output, stderr=subprocess.STDOUT,
            )
            running[process.pid] = (group, time.time(), output)
        # Reaped here rather than by Popen, to read the process's peak memory.
        pid, status, usage = os.wait4(-1, 0)
        if pid not in running:
            continue
        group, started, output = running.pop(pid)
        code = os.waitstatus_to_exitcode(status)
        peak_gb = usage.ru_maxrss / 2**20
        name = ", ".join(os.path.relpath(m, os.path.dirname(TESTS)) for m in group)
        if len(group) > 1:
            name = f"{len(group)} light modules ({name})"
        largest = max(largest, (peak_gb, name))
        output.seek(0)
        sys.stdout.write(output.read())
        output.close()
        ok = code in (0, NO_TESTS_COLLECTED)
        if not ok:
            failed.append(name)
        print(f"== {name}: {'passed' if ok else f'FAILED (exit {code})'} in "
              f"{time.time() - started:.0f} s, peak {peak_gb:.1f} GB", flush=True)
    print(f"== {count} modules in {time.time() - start:.0f} s; largest process "
          f"{largest[0]:.1f} GB ({largest[1] or '-'}); "
          f"{'failed: ' + ', '.join(failed) if failed else 'all passed'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
