"""A quiet log for the command-line tools: TensorFlow's native log lines.

TensorFlow's native libraries log through absl, whose logging nothing ever
initialises, so their lines go straight to file descriptor 2 whatever
`TF_CPP_MIN_LOG_LEVEL` says: oneDNN, CUDA drivers and CPU instructions while
they load, `E0000 ... failed call to cuInit` when the first op runs on a
machine without a GPU, and more. Users read the `E0000` lines as errors. None
of them has a cause in this project, so the tools leave them out;
`CONVBERT_KERAS_NATIVE_LOG=show` shows them. A program that merely imports the
library sees what TensorFlow prints unless it sets the variable to `hide`.

The filter is a small process of its own (this file run as a script) between
file descriptor 2 and the real stderr, so that what a crash writes last
(a fatal `F` line, a traceback from `faulthandler`) still gets through, and
the lines of child processes pass through it too. It must start before
TensorFlow loads: the package imports this module first, and it imports
only the standard library.
"""

import atexit
import os
import re
import subprocess
import sys

VARIABLE = "CONVBERT_KERAS_NATIVE_LOG"

# absl's line header (severity, date, time, thread, file:line) for information,
# warnings and errors (fatal lines explain a crash: they are kept), the banner
# absl writes before its first line, and the second line of TensorFlow's
# CPU-instruction notice.
NATIVE_LINE = re.compile(
    rb"[IWE]\d{4} [\d:.]+ +\d+ [\w.+-]+:\d+\] "
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|To enable the following instructions: .*rebuild TensorFlow with the appropriate"
    rb" compiler flags\."
)
# How long a tool's exit waits for the filter to pass on the last lines.
DRAIN_SECONDS = 5


def launched_as_tool(argv=None):
    """Whether this process is one of the project's tools: a console script
    (`convbert-...`) or `python -m convbert_keras...` (whose `argv[0]` is
    `-m` while the package imports). `scripts/` set the variable instead."""
    argv = sys.argv if argv is None else argv
    program = argv[0] if argv else ""
    return program == "-m" or os.path.basename(program).startswith("convbert-")


def hiding(environ=None, argv=None):
    """Whether native log lines are left out: as `CONVBERT_KERAS_NATIVE_LOG`
    says (`show` or `hide`), else for the tools only."""
    environ = os.environ if environ is None else environ
    setting = environ.get(VARIABLE, "").strip().lower()
    if setting in ("show", "hide"):
        return setting == "hide"
    if setting:
        raise ValueError(f"{VARIABLE}={setting!r}: set it to 'show' or 'hide'.")
    return launched_as_tool(argv)


def pass_on(source, sink):
    """Copies `source` to `sink` (file descriptors) until `source` ends,
    leaving out native log lines; a line is passed on once it is whole."""
    pending = b""
    while chunk := os.read(source, 65536):
        *lines, pending = (pending + chunk).split(b"\n")
        kept = b"".join(line + b"\n" for line in lines if not NATIVE_LINE.match(line))
        if kept:
            os.write(sink, kept)
    if pending and not NATIVE_LINE.match(pending):
        os.write(sink, pending)


_filter = None


def hide_native_log_lines():
    """From now until the process ends, lines in absl's format written to
    file descriptor 2 are left out; every other byte written there (Python's
    warnings and tracebacks included) reaches stderr, in order. Also defaults
    `TF_CPP_MIN_LOG_LEVEL` to 2 for TensorFlow's own level filter. Does
    nothing where it is already on or file descriptors cannot be rewired."""
    global _filter
    if _filter is not None or os.name != "posix":
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    try:
        # Its own session: a Ctrl-C meant for the tool must not end the filter
        # before the tool has written why it stopped. It ends when every
        # holder of the pipe (the tool, its children) has exited.
        _filter = subprocess.Popen(
            [sys.executable, "-I", "-S", os.path.abspath(__file__)],
            stdin=read_end,
            stdout=2,
            start_new_session=True,
        )
    except OSError:
        os.close(write_end)
        return
    finally:
        os.close(read_end)
    stderr = os.dup(2)
    os.dup2(write_end, 2)
    os.close(write_end)
    atexit.register(_drain, stderr)


def _drain(stderr):
    sys.stderr.flush()
    # Hands file descriptor 2 back, closing this process's end of the pipe.
    os.dup2(stderr, 2)
    os.close(stderr)
    try:
        _filter.wait(DRAIN_SECONDS)
    except subprocess.TimeoutExpired:
        pass  # a child still holds the pipe; the filter ends after it


if __name__ == "__main__":
    pass_on(0, 1)
elif hiding():
    hide_native_log_lines()
