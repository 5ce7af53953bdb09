"""What a run shows while it trains (`StepProgress`): lines at the right
steps with the losses, speed and time left; one rewritten line on a
terminal; steps counted from where a resumed run starts."""

import io

import keras
import numpy as np

from convbert_keras.training.progress import StepProgress
from convbert_keras.training.progress import format_seconds


class Terminal(io.StringIO):
    def isatty(self):
        return True


def fit(progress, epochs=2):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((32, 3), "float32"), np.ones((32, 1), "float32")
    model.fit(x, y, batch_size=8, epochs=epochs, verbose=0, callbacks=[progress])


def test_a_log_gets_a_line_every_interval_and_at_the_end():
    out = io.StringIO()
    fit(StepProgress(8, every=3, label="training: ", stream=out))
    lines = out.getvalue().splitlines()
    assert [line.split(" | ")[0] for line in lines] == [
        "training: step 3/8 (37%)",
        "training: step 6/8 (75%)",
        "training: step 8/8 (100%)",
    ]
    assert all(line.split(" | ")[1].startswith("loss ") for line in lines)
    assert "steps/s" in lines[0] and lines[0].endswith(" s left")
    assert lines[-1].endswith(" | done")
    assert "\r" not in out.getvalue()


def test_a_terminal_gets_one_line_rewritten_then_a_newline():
    out = Terminal()
    fit(StepProgress(8, every=3, stream=out))
    text = out.getvalue()
    assert text.startswith("\rstep 1/8") and text.endswith("\n") and text.count("\n") == 1
    assert "step 8/8 (100%)" in text.rsplit("\r", 1)[1]


def test_a_resumed_run_counts_from_its_step():
    out = io.StringIO()
    fit(StepProgress(12, start_step=4, every=4, stream=out))
    assert [line.split(" | ")[0] for line in out.getvalue().splitlines()] == [
        "step 8/12 (66%)",
        "step 12/12 (100%)",
    ]


def test_time_left_reads_as_a_person_says_it():
    assert [format_seconds(s) for s in (4.4, 59.6, 185, 7440)] == [
        "4 s",
        "1 min 0 s",
        "3 min 5 s",
        "2 h 4 min",
    ]
