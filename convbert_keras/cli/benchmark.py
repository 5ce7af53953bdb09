"""Benchmarks ConvBERT against transformers' PyTorch ConvBERT and keras-hub BERT.

    python scripts/benchmark.py --sizes small base --lengths 128 512 --batch-sizes 16
    python scripts/benchmark.py --sizes small --lengths 128 256 512 1024 2048 \
        --batch-sizes 2 --frameworks convbert_keras keras_hub_bert   # docs/performance/scaling.md

Writes results.json, summary.md, chart.png (and scaling.png) under --output and
prints the summary table. Each case runs in its own process.
"""

import argparse
import datetime
import os
import platform

from convbert_keras import benchmark
from convbert_keras.models.configs import CONVBERT_CONFIGS


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
        "--frameworks", nargs="+", default=list(benchmark.FRAMEWORKS), choices=benchmark.FRAMEWORKS
    )
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--num-layers", type=int, help="override the depth (quick runs)")
    parser.add_argument(
        "--output",
        default=os.path.join(
            "results", "benchmark-" + datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        ),
    )
    args = parser.parse_args(argv)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores")
    report = benchmark.run_benchmark(
        sizes=args.sizes,
        lengths=args.lengths,
        batch_sizes=args.batch_sizes,
        modes=args.modes,
        frameworks=args.frameworks,
        warmup=args.warmup,
        repeats=args.repeats,
        config_overrides={"num_layers": args.num_layers} if args.num_layers else None,
    )
    report["machine"] = {"cpu_count": os.cpu_count(), "platform": platform.platform()}
    paths = benchmark.write_report(report, args.output)
    print()
    print(benchmark.summary_table(report))
    print()
    print("wrote " + ", ".join(paths.values()))


if __name__ == "__main__":
    main()
