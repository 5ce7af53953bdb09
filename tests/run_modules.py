"""Runs the test suite one module per pytest process, a few processes at a time.

A TensorFlow process keeps what it compiled (XLA programs, traced tf.data
functions) until it exits, so one pytest process grows with the suite (11 GB
for the whole of it). One process per module bounds that by the largest
module, and two at a time use both cores of a 2-core machine.

Prints each module's output as it finishes, with its wall time and the peak
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
# The modules that take longest start first, so the processes finish together.
LONGEST_FIRST = (
    "test_pretraining_runs.py", "test_finetuning_runs.py", "test_demo.py", "test_tasks.py",
    "test_real_data.py", "test_pretraining.py", "test_finetuning.py", "test_comparison.py",
    "test_export.py", "test_question_answerer.py",
)
# pytest's exit code when every test of a module is deselected.
NO_TESTS_COLLECTED = 5


def ordered_modules():
    modules = sorted(glob.glob(os.path.join(TESTS, "test_*.py")))
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    return sorted(modules, key=lambda m: rank.get(os.path.basename(m), len(rank)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="pytest processes at a time")
    args, pytest_args = parser.parse_known_args(argv)

    pending = ordered_modules()
    count = len(pending)
    running = {}  # pid -> (module, start time, output file)
    failed, largest = [], (0, None)
    start = time.time()
    while pending or running:
        while pending and len(running) < args.jobs:
            module = pending.pop(0)
            output = tempfile.TemporaryFile(mode="w+")
            process = subprocess.Popen(
                [sys.executable, "-m", "pytest", module, *pytest_args],
                stdout=output, stderr=subprocess.STDOUT,
            )
            running[process.pid] = (module, time.time(), output)
        # Reaped here rather than by Popen, to read the process's peak memory.
        pid, status, usage = os.wait4(-1, 0)
        if pid not in running:
            continue
        module, started, output = running.pop(pid)
        code = os.waitstatus_to_exitcode(status)
        peak_gb = usage.ru_maxrss / 2**20
        largest = max(largest, (peak_gb, module))
        output.seek(0)
        sys.stdout.write(output.read())
        output.close()
        name = os.path.relpath(module, os.path.dirname(TESTS))
        ok = code in (0, NO_TESTS_COLLECTED)
        if not ok:
            failed.append(name)
        print(f"== {name}: {'passed' if ok else f'FAILED (exit {code})'} in "
              f"{time.time() - started:.0f} s, peak {peak_gb:.1f} GB", flush=True)
    print(f"== {count} modules in {time.time() - start:.0f} s; largest process "
          f"{largest[0]:.1f} GB ({os.path.basename(largest[1] or '-')}); "
          f"{'failed: ' + ', '.join(failed) if failed else 'all passed'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
