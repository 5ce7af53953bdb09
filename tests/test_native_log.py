"""The tools' filter for TensorFlow's native log lines (convbert_keras/_start_up.py)."""

import os
import subprocess
import sys
import threading

import pytest
from support import script_environment

from convbert_keras import _start_up

# One line of each kind the filter meets, and whether it is left out.
LINES = [
    (b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR", 1),
    (b"I0000 00:00:1796690865.877274   11758 port.cc:153] oneDNN custom operations are on.", 1),
    (b"W0000 00:00:1796690865.877984   11758 cudart_stub.cc:31] Could not find cuda drivers", 1),
    (b"E0000 00:00:1796690869.730574   11758 cuda_platform.cc:52] failed call to cuInit", 1),
    (b"I1208 12:01:02.123456 140231 cpu_feature_guard.cc:227] This TensorFlow binary is", 1),
    (
        b"To enable the following instructions: AVX2 AVX512F FMA, in other operations, "
        b"rebuild TensorFlow with the appropriate compiler flags.",
        1,
    ),
    # A fatal line explains a crash: kept.
    (b"F0000 00:00:1796690869.730574   11758 tensor.cc:10] Check failed: dims == 2", 0),
    (b"Traceback (most recent call last):", 0),
    (b'  File "x.py", line 1, in <module>', 0),
    (b"ValueError: I0000 00:00:1.0 1 a.cc:1] quoted in a message, not at a line start", 0),
    (b"UserWarning: E0000 is not a native line here", 0),
    ("pretraining: step 125/1500 | loss 30.31 | é ✓".encode(), 0),
    (b"", 0),
]


def filtered(chunks):
    """What `pass_on` writes for the bytes `chunks`, written one by one."""
    source_read, source_write = os.pipe()
    sink_read, sink_write = os.pipe()
    copier = threading.Thread(target=_start_up.pass_on, args=(source_read, sink_write))
    copier.start()
    for chunk in chunks:
        os.write(source_write, chunk)
    os.close(source_write)
    copier.join()
    os.close(sink_write)
    out = b""
    while piece := os.read(sink_read, 65536):
        out += piece
    os.close(source_read)
    os.close(sink_read)
    return out


def test_each_kind_of_line_is_dropped_or_kept_in_order():
    text = b"".join(line + b"\n" for line, _ in LINES)
    kept = b"".join(line + b"\n" for line, dropped in LINES if not dropped)
    assert filtered([text]) == kept


@pytest.mark.parametrize("size", [1, 7, 64])
def test_lines_split_across_writes_are_judged_whole(size):
    text = b"".join(line + b"\n" for line, _ in LINES)
    kept = b"".join(line + b"\n" for line, dropped in LINES if not dropped)
    assert filtered([text[i : i + size] for i in range(0, len(text), size)]) == kept


def test_a_last_line_without_a_newline_gets_through_and_a_native_one_does_not():
    assert filtered([b"first\n", b"Error: no newline"]) == b"first\nError: no newline"
    assert filtered([b"first\nE0000 00:00:1.5 7 a.cc:3] x"]) == b"first\n"


@pytest.mark.parametrize(
    ("setting", "argv", "hides"),
    [
        ("", ["/venv/bin/convbert-pretrain"], True),
        ("", ["-m"], True),
        ("", ["/venv/bin/pytest"], False),
        ("", ["scripts/demo.py"], False),
        ("", [], False),
        ("show", ["/venv/bin/convbert-export"], False),
        (" Show ", ["-m"], False),
        ("hide", ["my_training.py"], True),
    ],
)
def test_hidden_for_the_tools_unless_the_variable_says_otherwise(setting, argv, hides):
    environ = {_start_up.VARIABLE: setting} if setting else {}
    assert _start_up.hiding(environ, argv) is hides


def test_a_wrong_setting_is_refused_with_the_values_it_takes():
    with pytest.raises(ValueError, match=r"CONVBERT_KERAS_NATIVE_LOG='quiet'.*'show' or 'hide'"):
        _start_up.hiding({_start_up.VARIABLE: "quiet"}, ["-m"])


# TensorFlow's native lines come at start-up and later (the first op on a
# machine without a GPU); a Python warning and a traceback come between.
PROGRAM = """
import sys, warnings
import convbert_keras, tensorflow as tf
print("imported", file=sys.stderr, flush=True)
print(int(tf.reduce_sum(tf.range(10))), flush=True)
warnings.warn("a Python warning")
raise SystemExit("the last line")
"""


def run(program, setting, *args):
    env = script_environment()
    env.pop("TF_CPP_MIN_LOG_LEVEL")
    env[_start_up.VARIABLE] = setting
    return subprocess.run(
        [sys.executable, *args, "-c", program], env=env, capture_output=True, timeout=120
    )


def native(stderr):
    return [line for line in stderr.splitlines() if _start_up.NATIVE_LINE.match(line)]


def test_a_hidden_process_writes_what_a_shown_one_does_less_the_native_lines():
    shown = run(PROGRAM, "show")
    hidden = run(PROGRAM, "hide")
    assert shown.returncode == hidden.returncode == 1
    assert shown.stdout == hidden.stdout == b"45\n"
    # The control: TensorFlow writes native lines here when nothing hides them.
    assert native(shown.stderr)
    assert native(hidden.stderr) == []
    kept = [line for line in shown.stderr.splitlines() if line not in native(shown.stderr)]
    assert hidden.stderr.splitlines() == kept
    assert kept[0] == b"imported"
    assert b"UserWarning: a Python warning" in hidden.stderr
    assert kept[-1] == b"the last line"


def test_what_a_crash_writes_last_still_gets_through():
    crash = (
        "import faulthandler, ctypes, convbert_keras\nfaulthandler.enable()\nctypes.string_at(0)"
    )
    result = run(crash, "hide")
    assert result.returncode != 0
    assert b"Fatal Python error: Segmentation fault" in result.stderr
    assert native(result.stderr) == []


@pytest.mark.parametrize("launch", ["console script", "module", "scripts/ wrapper"])
def test_the_tools_start_without_native_lines(launch):
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    command = {
        "console script": [os.path.join(os.path.dirname(sys.executable), "convbert-export")],
        "module": [sys.executable, "-m", "convbert_keras.cli.export"],
        "scripts/ wrapper": [sys.executable, os.path.join(root, "scripts", "export.py")],
    }[launch]
    env = script_environment()
    env.pop("TF_CPP_MIN_LOG_LEVEL")
    env.pop(_start_up.VARIABLE, None)
    result = subprocess.run(
        [*command, "--preset", "no/such/preset", "--name", "m"],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stdout == b""
    # Only the tool's own lines: what it loads, and the error naming it.
    lines = result.stderr.decode().splitlines()
    assert lines[0] == "loading no/such/preset"
    assert len(lines) == 2 and lines[1].startswith("error: no/such/preset")
