"""Progress of a training run, counted in steps across resumes."""

import sys
import time

import keras
import numpy as np

# The logs worth a glance while a run trains, in the order shown, with their
# short names; the learning curve and TensorBoard keep every metric.
SHOWN = (
    ("loss", "loss"),
    ("mlm_loss", "mlm"),
    ("rtd_loss", "rtd"),
    ("generator_accuracy", "gen acc"),
    ("replaced_auc", "replaced AUC"),
)
# A terminal's line is rewritten at most this often (seconds).
REFRESH = 0.2


def format_seconds(seconds):
    """`seconds` as a reader wants a time left: `45 s`, `3 min 5 s`, `2 h 4 min`."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


class StepProgress(keras.callbacks.Callback):
    """Shows a run's step, its running losses, its speed and the time left.

    On a terminal one line is rewritten as the run trains; elsewhere (a CI
    log, a file) a line is written every `every` steps and at the end, so
    the log stays short and readable. The speed leaves out the first step
    of each `fit` (it compiles), so the time left is not inflated by it.

    Args:
        total_steps: int. The run's last step.
        start_step: int. The step the run resumes from (0 when new).
        every: int. Steps between lines when the output is not a terminal.
        label: str. What trains, at the start of each line.
        stream: where to write; `sys.stdout` by default.

    Example:
    ```python
    from convbert_keras.training.progress import StepProgress

    model = keras.Sequential([keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.zeros((64, 3)), np.zeros((64, 1))
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[StepProgress(16, every=8)])
    ```
    """

    def __init__(self, total_steps, start_step=0, every=100, label="", stream=None):
        super().__init__()
        self.total_steps = int(total_steps)
        self.step = int(start_step)
        self.every = max(1, int(every))
        self.label = label
        self.stream = stream
        self._timed_from = None
        self._shown = 0.0

    @property
    def _out(self):
        return self.stream if self.stream is not None else sys.stdout

    @property
    def _terminal(self):
        return getattr(self._out, "isatty", lambda: False)()

    def on_train_begin(self, logs=None):
        self._timed_from = None

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        now = time.perf_counter()
        if self._timed_from is None:
            self._timed_from = (self.step, now)  # after the compiling step
        last = self.step >= self.total_steps
        if self._terminal:
            if last or now - self._shown >= REFRESH:
                self._shown = now
                self._out.write("\r" + self.line(logs, now) + "\x1b[K")
                self._out.flush()
        elif last or self.step % self.every == 0:
            self._out.write(self.line(logs, now) + "\n")
            self._out.flush()

    def on_train_end(self, logs=None):
        if self._terminal and self._shown:
            self._out.write("\n")
            self._out.flush()

    def line(self, logs, now):
        """The progress line at `now` with the running `logs`."""
        total = self.total_steps
        parts = [f"{self.label}step {self.step}/{total} ({100 * self.step // max(1, total)}%)"]
        shown = [
            f"{short} {float(np.ravel(keras.ops.convert_to_numpy(logs[name]))[0]):.4g}"
            for name, short in SHOWN
            if logs and name in logs
        ]
        if shown:
            parts.append(", ".join(shown))
        first_step, since = self._timed_from
        if self.step > first_step and now > since:
            rate = (self.step - first_step) / (now - since)
            left = (total - self.step) / rate
            parts.append(f"{rate:.3g} steps/s")
            parts.append("done" if self.step >= total else f"{format_seconds(left)} left")
        return " | ".join(parts)
