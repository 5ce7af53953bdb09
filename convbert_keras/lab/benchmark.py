"""Times ConvBERT against the implementations a user would otherwise pick.

For each (size, sequence length, batch size) it measures, on identical
inputs and in separate worker processes (so peak memory is per case):

- `convbert_keras`: a ConvBertBackbone with a classification head, training
  through Keras' `fit` path (`train_on_batch`, `jit_compile=True`) and
  inference through `predict_on_batch` (also compiled);
- `convbert_keras_remat`: the same with `remat=True` (each encoder layer
  recomputed in the backward pass; asked for by name);
- `torch`: transformers' PyTorch `ConvBertForSequenceClassification`, when
  torch and transformers are installed, run eagerly;
- `torch_compiled`: the same under `torch.compile` (the default inductor
  backend), the strongest PyTorch anchor; its compilation time, the first
  step's excess over the median, is reported apart (`compile_seconds`),
  with inductor's on-disk caches off (set TORCHINDUCTOR_FORCE_DISABLE_CACHES=0
  to time a warm start);
- `keras_hub_bert`: keras-hub's `BertTextClassifier` of the same width and
  depth, compiled with `jit_compile=True`.

It reports milliseconds per step (median of `repeats` after warm-up),
tokens/s, peak resident memory of the worker during the timed steps (and,
separately, including warm-up and compilation), achieved GFLOP/s from an
analytic FLOP count, that rate as a fraction of a large matrix product timed
in the same run, and every ratio against the references. For the Keras
cases on TensorFlow it also reports the step's XLA buffers (`xla_buffers_mb`:
the scratch memory XLA's buffer assignment plans for one step, activations
and intermediates, without weights and optimizer state), read from XLA's
dump. It is what a step needs beyond the model on an accelerator, where
the host process's resident baseline (the TensorFlow runtime, the traced
graph) is not in device memory.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from convbert_keras.files import write_json
from convbert_keras.lab.reference import hf_config_kwargs
from convbert_keras.models.configs import convbert_config

FRAMEWORKS = (
    "convbert_keras",
    "convbert_keras_remat",
    "torch",
    "torch_compiled",
    "keras_hub_bert",
)
# What runs unless asked: ours rematerialised is a memory option, not the default.
DEFAULT_FRAMEWORKS = ("convbert_keras", "torch", "torch_compiled", "keras_hub_bert")
TORCH_FRAMEWORKS = ("torch", "torch_compiled")
KERAS_FRAMEWORKS = ("convbert_keras", "convbert_keras_remat", "keras_hub_bert")
# The Keras backends the Keras cases (ours and keras-hub's BERT) can run on.
BACKENDS = ("tensorflow", "jax", "torch")
NUM_CLASSES = 2
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "benchmark_worker.py")


# --- FLOP counts ------------------------------------------------------------


def convbert_forward_flops(config, batch_size, length):
    """Multiply-adds x 2 of one forward pass (matrix products and SDConv).

    Elementwise work (softmax, LayerNorm, GELU) is left out, as usual.
    """
    h = config["hidden_dim"]
    e = config.get("embedding_dim") or h
    n, g, k = config["num_heads"], config.get("head_ratio", 2), config.get("conv_kernel_size", 9)
    i, groups = config["intermediate_dim"], config.get("num_groups", 1)
    conv_type = config.get("conv_type", "span")
    d = h // n
    heads = n if conv_type == "none" else max(1, n // g)
    a = heads * d
    per_token = 3 * h * a  # query, key, value
    per_token += 2 * length * a  # scores and context
    concat = a
    if conv_type != "none":
        if conv_type == "span":
            per_token += h * k + h * a  # depthwise taps, pointwise
        per_token += a * heads * k  # kernel generator
        per_token += h * a  # conv values
        per_token += a * k  # the dynamic convolution
        concat = 2 * a
    per_token += concat * h  # attention output
    per_token += 2 * h * i // groups  # feed-forward
    per_token *= config["num_layers"]
    if e != h:
        per_token += e * h  # embedding projection
    per_sequence = h * h + h * NUM_CLASSES  # classification head on [CLS]
    return 2 * (per_token * length + per_sequence) * batch_size


def bert_forward_flops(config, batch_size, length):
    """The same count for BERT of the same width and depth (no bottleneck)."""
    bert = dict(config, conv_type="none", embedding_dim=config["hidden_dim"], num_groups=1)
    return convbert_forward_flops(bert, batch_size, length)


def with_xla_dump(env, dump):
    """The environment `env` with XLA told to dump what it compiles to the
    folder `dump`, on top of the XLA_FLAGS already there."""
    flags = f"{env.get('XLA_FLAGS', '')} --xla_dump_to={dump}".strip()
    return dict(env, XLA_FLAGS=flags)


def xla_temp_bytes(dump, module="one_step_on_data"):
    """The largest scratch buffer (`preallocated-temp`) XLA's buffer
    assignment planned for the modules in the dump folder `dump` whose name
    contains `module`; None if there is none."""
    sizes = []
    for name in os.listdir(dump):
        if module in name and name.endswith("buffer-assignment.txt"):
            with open(os.path.join(dump, name)) as f:
                sizes += [int(m) for m in _TEMP.findall(f.read())]
    return max(sizes) if sizes else None


_TEMP = re.compile(r"allocation \d+: size (\d+), preallocated-temp")


def physical_memory_mb():
    """The memory this process may use, in MB: the machine's, or a
    container's (cgroup v2 `memory.max`) where that is smaller; None where
    the platform says neither."""
    sizes = []
    try:
        sizes.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**20)
    except (ValueError, OSError, AttributeError):
        pass
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            sizes.append(int(f.read()) / 2**20)
    except (OSError, ValueError):  # no cgroup v2, or "max"
        pass
    return min(sizes) if sizes else None


def default_memory_limit_mb():
    """The resident memory a worker may reach before it is stopped: the
    memory less 1 GiB for the system and the harness, so a case that does
    not fit ends as a row of the report instead of as the kernel's
    out-of-memory kill of whatever process it picks. None (no limit) where
    the memory is unknown or under 2 GiB."""
    total = physical_memory_mb()
    return None if total is None or total < 2048 else total - 1024


def _resident_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return None


def _kill(process):
    """Kills the worker and what it started (inductor's compile workers)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (AttributeError, OSError):  # not POSIX, or already gone
        process.kill()
    process.wait()


def run_worker(spec, timeout=3600, max_memory_mb=None):
    """Runs `worker_main(spec)` in a fresh Python (under the Keras backend
    `spec["backend"]`, by default TensorFlow); returns its dict or an error.
    A Keras case on TensorFlow also gets `xla_buffers_mb` from XLA's dump.

    The worker (with what it starts) is stopped when its resident memory
    passes `max_memory_mb` (read from /proc every 50 ms, so Linux only;
    elsewhere no limit) or it runs past `timeout` seconds; the error then
    says which. Out of memory too, with `out_of_memory: True` like the
    first: a worker that dies after XLA planned more buffers than
    `max_memory_mb`, and one killed by a SIGKILL the harness did not send
    (the kernel's out-of-memory killer, where a container allows less than
    the limit)."""
    backend = spec.get("backend", "tensorflow")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND=backend)
    if spec.get("framework") == "torch_compiled":
        # Inductor keeps what it compiled on disk and reuses it in later
        # processes; its compile time is reported cold unless asked otherwise.
        env.setdefault("TORCHINDUCTOR_FORCE_DISABLE_CACHES", "1")
    dump = None
    if backend == "tensorflow" and spec.get("framework") in KERAS_FRAMEWORKS:
        dump = tempfile.mkdtemp(prefix="xla-dump-")
        env = with_xla_dump(env, dump)
    stopped = None
    try:
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            process = subprocess.Popen(
                [sys.executable, WORKER, json.dumps(spec)],
                stdout=out,
                stderr=err,
                env=env,
                start_new_session=True,
            )
            try:
                start = time.monotonic()
                while process.poll() is None:
                    resident = _resident_mb(process.pid) if max_memory_mb else None
                    if resident is not None and resident > max_memory_mb:
                        stopped = {
                            "error": f"out of memory: resident {resident:.0f} MB passed the "
                            f"{max_memory_mb:.0f} MB limit",
                            "out_of_memory": True,
                        }
                    elif time.monotonic() - start > timeout:
                        stopped = {"error": f"timed out after {timeout} s"}
                    if stopped:
                        break
                    time.sleep(0.05)
            finally:
                # Also when the harness itself is interrupted (Ctrl-C).
                if process.poll() is None:
                    _kill(process)
                elif stopped:
                    stopped = None  # it finished between the check and the kill
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read(), err.read()
        temp = xla_temp_bytes(dump) if dump else None
    finally:
        if dump:
            shutil.rmtree(dump, ignore_errors=True)
    if stopped:
        return stopped
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if process.returncode != 0 or not lines:
        tail = (stderr or stdout).strip().splitlines()[-1:] or [
            f"exit status {process.returncode}, no output"
        ]
        if temp is not None and max_memory_mb and temp / 2**20 > max_memory_mb:
            # An allocation this large fails at once, before the resident
            # memory can pass the limit, and TensorFlow dies of it in
            # various ways; XLA's plan, dumped before the step ran, says why.
            return {
                "error": f"out of memory: XLA planned {temp / 2**20:.0f} MB of buffers, more "
                f"than the {max_memory_mb:.0f} MB limit (the worker died: {tail[0][:200]})",
                "out_of_memory": True,
            }
        if process.returncode == -signal.SIGKILL:
            return {
                "error": "out of memory: killed by a SIGKILL the harness did not send "
                "(the kernel's out-of-memory killer; lower --max-memory-gb to stop such "
                "cases first)",
                "out_of_memory": True,
            }
        return {"error": tail[0][:300]}
    measured = json.loads(lines[-1])
    if temp is not None:
        measured["xla_buffers_mb"] = temp / 2**20
    return measured


def torch_available():
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        return False
    return True


# --- The harness --------------------------------------------------------------


def run_benchmark(
    sizes=("small",),
    lengths=(128,),
    batch_sizes=(16,),
    modes=("train", "infer"),
    frameworks=DEFAULT_FRAMEWORKS,
    warmup=2,
    repeats=5,
    config_overrides=None,
    backend="tensorflow",
    max_memory_mb=None,
    progress=None,
    log=print,
):
    """Measures every case; returns `{"matmul_gflops": ..., "backend": ...,
    "settings": ..., "results": [...]}`.

    `backend` is the Keras backend of the Keras cases and of the matmul
    reference: `"jax"` compiles with `jax.jit` and runs on a GPU when JAX
    sees one, so a machine with JAX, Keras and keras-hub (no TensorFlow) can
    time ours against PyTorch. Peak memory is the host's.

    A worker whose resident memory passes `max_memory_mb` is stopped and
    its case reported as not fitting (`"out_of_memory": True`), so a sweep
    finds the longest sequence that fits without the machine running out.

    `progress`: a JSON path the report is saved to after each measurement.
    When it already holds a report of the same settings (backend, warm-up,
    repeats, config overrides), its measurements and the cases that did not
    fit under a limit at least as high are kept rather than made again
    (crashes and time-outs are tried again), and its matmul reference with
    them, so a killed sweep goes on where it stopped and one run again only
    adds what is new; other settings raise a ValueError.
    `convbert_keras_remat` is not run for inference, which `remat` does not
    change.

    Each result: framework, size, mode, batch_size, length, ms_per_step,
    tokens_per_s, peak_memory_mb, gflops, matmul_fraction, and
    `speedup_vs_<framework>` for the references measured on the same case.
    """
    if backend not in BACKENDS:
        raise ValueError(f"Unknown backend {backend!r}; expected one of {BACKENDS}.")
    settings = {
        "backend": backend,
        "warmup": warmup,
        "repeats": repeats,
        "config_overrides": config_overrides or {},
    }
    report = {"matmul_gflops": None, "backend": backend, "settings": settings, "results": []}
    if progress and os.path.exists(progress):
        report = _resumed_report(progress, settings, max_memory_mb)
        log(f"{progress}: keeping its {len(report['results'])} results")
    if set(frameworks) & set(TORCH_FRAMEWORKS) and not torch_available():
        log("torch/transformers not installed: skipping the PyTorch reference")
        frameworks = tuple(f for f in frameworks if f not in TORCH_FRAMEWORKS)
    if report["matmul_gflops"] is None:
        matmul = run_worker(
            {"framework": "matmul", "backend": backend, "warmup": warmup, "repeats": repeats}
        )
        report["matmul_gflops"] = matmul.get("gflops")
        if report["matmul_gflops"] is None:
            log(f"matmul failed: {matmul}")
    matmul_gflops = report["matmul_gflops"]
    if matmul_gflops:
        log(f"matmul reference: {matmul_gflops:.1f} GFLOP/s")
    done = {(r["framework"], *_case_key(r)) for r in report["results"]}
    for size in sizes:
        config = convbert_config(size, **(config_overrides or {}))
        for length in lengths:
            config = dict(config, max_sequence_length=max(config["max_sequence_length"], length))
            for batch_size in batch_sizes:
                for mode in modes:
                    for framework in frameworks:
                        if framework == "convbert_keras_remat" and mode == "infer":
                            continue
                        if (framework, size, mode, batch_size, length) in done:
                            continue
                        spec = {
                            "framework": framework,
                            "backend": backend,
                            "batch_size": batch_size,
                            "config": {"backbone": config, "hf": hf_config_kwargs(config)}
                            if framework in TORCH_FRAMEWORKS
                            else config,
                            "length": length,
                            "mode": mode,
                            "warmup": warmup,
                            "repeats": repeats,
                        }
                        measured = run_worker(spec, max_memory_mb=max_memory_mb)
                        flops = (
                            bert_forward_flops
                            if framework == "keras_hub_bert"
                            else convbert_forward_flops
                        )(config, batch_size, length) * (3 if mode == "train" else 1)
                        row = {
                            "framework": framework,
                            "backend": {
                                "torch": "torch (eager)",
                                "torch_compiled": "torch.compile",
                            }.get(framework, backend),
                            "size": size,
                            "mode": mode,
                            "batch_size": batch_size,
                            "length": length,
                            "flops": flops,
                        }
                        if "error" in measured:
                            row["error"] = measured["error"]
                            if measured.get("out_of_memory"):
                                row.update(out_of_memory=True, memory_limit_mb=max_memory_mb)
                        else:
                            seconds = measured["seconds"]
                            row.update(
                                ms_per_step=1000 * seconds,
                                tokens_per_s=batch_size * length / seconds,
                                peak_memory_mb=measured["peak_memory_mb"],
                                peak_memory_with_warmup_mb=measured["peak_memory_with_warmup_mb"],
                                gflops=flops / seconds / 1e9,
                            )
                            for key in ("compile_seconds", "xla_buffers_mb"):
                                if key in measured:
                                    row[key] = measured[key]
                            if matmul_gflops:
                                row["matmul_fraction"] = row["gflops"] / matmul_gflops
                        log(format_row(row))
                        report["results"].append(row)
                        _compare_with_ours(report["results"], _case_key(row))
                        if progress:
                            write_json(progress, report)
    # Rows kept from an earlier run and rows measured again join the others:
    # by size (in this run's order), length, batch size, mode (training
    # first) and framework.
    sizes = list(sizes)
    report["results"].sort(
        key=lambda r: (
            sizes.index(r["size"]) if r["size"] in sizes else len(sizes),
            r["length"],
            r["batch_size"],
            r["mode"] != "train",
            FRAMEWORKS.index(r["framework"]),
        )
    )
    return report


def _case_key(row):
    return row["size"], row["mode"], row["batch_size"], row["length"]


def _compare_with_ours(results, case):
    """Sets ours' `speedup_vs_<framework>` and `memory_ratio_vs_<framework>`
    against every other framework measured on `case`."""
    rows = [r for r in results if _case_key(r) == case and "error" not in r]
    ours = next((r for r in rows if r["framework"] == "convbert_keras"), None)
    for row in rows:
        if ours is not None and row is not ours:
            ours[f"speedup_vs_{row['framework']}"] = row["ms_per_step"] / ours["ms_per_step"]
            ours[f"memory_ratio_vs_{row['framework']}"] = (
                ours["peak_memory_mb"] / row["peak_memory_mb"]
            )


def _resumed_report(path, settings, max_memory_mb):
    with open(path, encoding="utf-8") as f:
        report = json.load(f)
    saved = report.get("settings")
    if saved != settings:
        raise ValueError(
            f"{path} holds results measured with other settings ({saved}, now {settings}); "
            "measure into another folder, or delete it to measure again."
        )

    def kept(row):
        # Crashes and time-outs are measured again; what did not fit is kept
        # unless the limit is higher now (or gone).
        if "error" not in row:
            return True
        limit = row.get("memory_limit_mb")
        return (
            bool(row.get("out_of_memory"))
            and None not in (limit, max_memory_mb)
            and (limit >= max_memory_mb)
        )

    report["results"] = [r for r in report["results"] if kept(r)]
    return report


def format_row(row):
    head = (
        f"{row['framework']:>15} {row['size']:>12} {row['mode']:>5} "
        f"b{row['batch_size']:<3} L{row['length']:<5}"
    )
    if "error" in row:
        return f"{head} error: {row['error']}"
    compile_time = (
        f" (compiled in {row['compile_seconds']:.1f} s)" if "compile_seconds" in row else ""
    )
    buffers = f" (XLA buffers {row['xla_buffers_mb']:.1f} MB)" if "xla_buffers_mb" in row else ""
    return (
        f"{head} {row['ms_per_step']:9.1f} ms {row['tokens_per_s']:9.0f} tok/s "
        f"{row['peak_memory_mb']:7.0f} MB {row['gflops']:6.1f} GFLOP/s{compile_time}{buffers}"
    )


def _gflops(value):
    return "not measured" if value is None else f"{value:.1f} GFLOP/s"


def summary_table(report):
    """A Markdown table of the results, ours with its ratios."""
    lines = [
        f"Matmul reference: {_gflops(report['matmul_gflops'])} (float32, XLA)",
        "",
        "| size | mode | batch | length | framework | ms/step | tokens/s | peak MB "
        "| XLA buffers MB | GFLOP/s | % of matmul | ours vs this |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    results = report["results"]
    for row in results:
        if "error" in row:
            lines.append(
                f"| {row['size']} | {row['mode']} | {row['batch_size']} | {row['length']} | "
                f"{row['framework']} | error: {row['error']} | | | | | | |"
            )
            continue
        ours = next(
            (
                r
                for r in results
                if r["framework"] == "convbert_keras"
                and "error" not in r
                and _case_key(r) == _case_key(row)
            ),
            None,
        )
        ratio = ""
        if ours is not None and row is not ours:
            speed = row["ms_per_step"] / ours["ms_per_step"]
            memory = ours["peak_memory_mb"] / row["peak_memory_mb"]
            ratio = f"{speed:.2f}x faster, {memory:.2f}x memory"
        fraction = f"{100 * row['matmul_fraction']:.0f}%" if "matmul_fraction" in row else ""
        buffers = f"{row['xla_buffers_mb']:.1f}" if "xla_buffers_mb" in row else ""
        framework = row["framework"]
        if "compile_seconds" in row:
            framework += f" (compiled in {row['compile_seconds']:.0f} s)"
        lines.append(
            f"| {row['size']} | {row['mode']} | {row['batch_size']} | {row['length']} | "
            f"{framework} | "
            f"{row['ms_per_step']:.1f} | {row['tokens_per_s']:.0f} | {row['peak_memory_mb']:.0f} | "
            f"{buffers} | {row['gflops']:.1f} | {fraction} | {ratio} |"
        )
    return "\n".join(lines)


def plot(report, path):
    """Tokens/s per case and framework, as a grouped bar chart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in report["results"] if "error" not in r]
    cases = sorted(
        {_case_key(r) for r in rows},
        key=lambda c: (c[1], c[0], c[3], c[2]),
    )
    frameworks = [f for f in FRAMEWORKS if any(r["framework"] == f for r in rows)]
    width = 0.8 / max(1, len(frameworks))
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(cases)), 4.5))
    for i, framework in enumerate(frameworks):
        values = [
            next(
                (
                    r["tokens_per_s"]
                    for r in rows
                    if r["framework"] == framework and _case_key(r) == case
                ),
                0,
            )
            for case in cases
        ]
        ax.bar([c + i * width for c in range(len(cases))], values, width, label=framework)
    ax.set_xticks([c + width * (len(frameworks) - 1) / 2 for c in range(len(cases))])
    ax.set_xticklabels([f"{s}\n{m} b{b} L{n}" for s, m, b, n in cases], fontsize=8)
    ax.set_ylabel("tokens / s (higher is better)")
    ax.set_title(f"ConvBERT throughput (matmul reference {_gflops(report['matmul_gflops'])})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_scaling(report, path):
    """Milliseconds per step and peak resident memory against sequence
    length, log-log, one line per framework, size, mode and batch size; a
    cross on the memory panel where a case did not fit in memory."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def series(row):
        return row["framework"], row["size"], row["mode"], row["batch_size"]

    rows = report["results"]
    fig, (time_ax, memory_ax) = plt.subplots(1, 2, figsize=(11, 4.5))
    for key in sorted({series(r) for r in rows}):
        measured = sorted(
            (r["length"], r["ms_per_step"], r["peak_memory_mb"])
            for r in rows
            if series(r) == key and "error" not in r
        )
        too_long = [r for r in rows if series(r) == key and r.get("out_of_memory")]
        label = f"{key[0]} {key[1]} {key[2]} b{key[3]}"
        if too_long:
            label += f" (out of memory at {min(r['length'] for r in too_long)})"
        lengths = [m[0] for m in measured]
        (line,) = time_ax.plot(lengths, [m[1] for m in measured], marker="o", label=label)
        memory_ax.plot(lengths, [m[2] for m in measured], marker="o", color=line.get_color())
        for r in too_long:
            if r.get("memory_limit_mb"):
                memory_ax.plot(
                    r["length"],
                    r["memory_limit_mb"],
                    marker="x",
                    markersize=10,
                    color=line.get_color(),
                )
    for ax, label in ((time_ax, "ms / step"), (memory_ax, "peak resident MB")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length")
        ax.set_ylabel(label)
    time_ax.set_title("Step time against sequence length")
    memory_ax.set_title("Peak memory (x: passed the limit, did not fit)")
    time_ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(report, directory):
    """Writes results.json, summary.md and chart.png (and scaling.png when
    several lengths were measured); returns their paths."""
    os.makedirs(directory, exist_ok=True)
    paths = {
        name: os.path.join(directory, name) for name in ("results.json", "summary.md", "chart.png")
    }
    write_json(paths["results.json"], report)
    with open(paths["summary.md"], "w") as f:
        f.write(summary_table(report) + "\n")
    plot(report, paths["chart.png"])
    if len({r["length"] for r in report["results"]}) > 2:
        paths["scaling.png"] = os.path.join(directory, "scaling.png")
        plot_scaling(report, paths["scaling.png"])
    return paths
