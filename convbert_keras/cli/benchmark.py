"""Benchmarks ConvBERT against transformers' PyTorch ConvBERT and keras-hub BERT.

    python scripts/benchmark.py --sizes small base --lengths 128 512 --batch-sizes 16
    python scripts/benchmark.py --sizes small --lengths 128 256 512 1024 2048 4096 8192 \
        --batch-sizes 1 --frameworks convbert_keras convbert_keras_remat keras_hub_bert \
        --warmup 1 --repeats 3 --output results/scaling-8k   # docs/performance/scaling.md

Writes results.json, summary.md, chart.png (and scaling.png) under --output and
prints the summary table. Each case runs in its own process, stopped (and
reported as not fitting) when its resident memory passes --max-memory-gb.
results.json is saved after every case: run the same command again (with the
same --output), after a kill or to add lengths, and the cases already in it
are kept, not measured again (delete the folder to measure them again).

    python scripts/benchmark.py --serving saved_models/convbert_sentiment/1

times an export as TF Serving runs it (loaded into a session): latency of
single-text requests (p50, p99) and texts per second in batches of 32, on the
Rotten Tomatoes test snippets or the lines of --texts.
"""

import argparse
import datetime
import os
import platform

from convbert_keras.lab import benchmark
from convbert_keras.models.configs import CONVBERT_CONFIGS


def _non_negative(text):
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (no limit) or more, not {text}")
    return value


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", nargs="+", default=["small"], choices=sorted(CONVBERT_CONFIGS))
    parser.add_argument("--lengths", nargs="+", type=int, default=[128])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[16])
    parser.add_argument(
        "--modes", nargs="+", default=["train", "infer"], choices=["train", "infer"]
    )
    parser.add_argument(
        "--frameworks",
        nargs="+",
        default=list(benchmark.DEFAULT_FRAMEWORKS),
        choices=benchmark.FRAMEWORKS,
        help="convbert_keras_remat (ours with remat=True) runs only when named",
    )
    parser.add_argument(
        "--backend",
        default="tensorflow",
        choices=benchmark.BACKENDS,
        help="Keras backend of the Keras cases and the matmul reference (jax: jax.jit, "
        "on a GPU when JAX sees one)",
    )
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--num-layers", type=int, help="override the depth (quick runs)")
    default_limit = benchmark.default_memory_limit_mb()
    parser.add_argument(
        "--max-memory-gb",
        type=_non_negative,
        default=default_limit / 1024 if default_limit else None,
        help="stop a case whose resident memory passes this, and report it as not fitting "
        "(default: the machine's memory less 1 GiB; 0: no limit)",
    )
    parser.add_argument(
        "--output",
        default=os.path.join(
            "results", "benchmark-" + datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        ),
    )
    serving = parser.add_argument_group("an export, as TF Serving runs it (instead of the above)")
    serving.add_argument("--serving", metavar="VERSION_DIR", help="an export's version folder")
    serving.add_argument("--signature", default="serving_default")
    serving.add_argument("--text-input", default="text", help="the signature's text input")
    serving.add_argument("--texts", help="a UTF-8 file, one text per line")
    serving.add_argument("--requests", type=int, default=200, help="single-text requests")
    serving.add_argument("--serving-batch-size", type=int, default=32)
    args = parser.parse_args(argv)
    if args.serving:
        return _serving(parser, args)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores")
    os.makedirs(args.output, exist_ok=True)
    try:
        report = benchmark.run_benchmark(
            sizes=args.sizes,
            lengths=args.lengths,
            batch_sizes=args.batch_sizes,
            modes=args.modes,
            frameworks=args.frameworks,
            warmup=args.warmup,
            repeats=args.repeats,
            config_overrides={"num_layers": args.num_layers} if args.num_layers else None,
            backend=args.backend,
            max_memory_mb=args.max_memory_gb * 1024 if args.max_memory_gb else None,
            progress=os.path.join(args.output, "results.json"),
        )
    except ValueError as error:
        parser.exit(2, f"error: {error}\n")
    report["machine"] = {"cpu_count": os.cpu_count(), "platform": platform.platform()}
    paths = benchmark.write_report(report, args.output)
    print()
    print(benchmark.summary_table(report))
    print()
    print("wrote " + ", ".join(paths.values()))


def _serving(parser, args):
    from convbert_keras.files import write_json
    from convbert_keras.lab.serving_benchmark import measure_serving

    if args.texts:
        with open(args.texts, encoding="utf-8") as f:
            texts = [line.rstrip("\n") for line in f if line.strip()]
    else:
        from convbert_keras.data import load_rotten_tomatoes_splits

        texts = load_rotten_tomatoes_splits()["test"][0]
    try:
        result = measure_serving(
            args.serving,
            texts,
            signature_name=args.signature,
            input_name=args.text_input,
            requests=args.requests,
            batch_size=args.serving_batch_size,
        )
    except (ValueError, OSError) as error:
        parser.exit(2, f"error: {error}\n")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores")
    print(
        f"{args.serving} ({args.signature}), loaded in {result['load_s']} s: batch 1 "
        f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms over {result['requests']} "
        f"requests; batch {result['batch_size']}: {result['texts_per_s']} texts/s"
    )
    os.makedirs(args.output, exist_ok=True)
    path = os.path.join(args.output, "serving.json")
    write_json(path, dict(result, export=args.serving, signature=args.signature))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
