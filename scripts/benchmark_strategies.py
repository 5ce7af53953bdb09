"""Times pretraining steps with and without XLA on one device, on two logical
CPU devices (MirroredStrategy) and on two local workers
(MultiWorkerMirroredStrategy), in one run, and prints the table.

    .venv/bin/python scripts/benchmark_strategies.py --output results/strategies

The model is the small size cut to --num-layers layers, pretrained on the
Rotten Tomatoes snippets (fetched from PyPI) with the BERT vocabulary.
"""

import os

# As the console scripts: TensorFlow's native log lines left out
# (CONVBERT_KERAS_NATIVE_LOG=show shows them).
os.environ.setdefault("CONVBERT_KERAS_NATIVE_LOG", "hide")

import argparse  # noqa: E402
import json  # noqa: E402

from convbert_keras.lab import strategy_benchmark  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output", default=os.path.join("results", "strategies"))
    parser.add_argument("--num-layers", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--interval", type=int, default=10, help="steps per timed interval")
    args = parser.parse_args(argv)

    from convbert_keras.data import load_rotten_tomatoes_splits
    from convbert_keras.models.configs import convbert_config

    os.makedirs(args.output, exist_ok=True)
    corpus = os.path.join(args.output, "corpus.txt")
    with open(corpus, "w", encoding="utf-8") as f:
        f.write("\n".join(load_rotten_tomatoes_splits()["train"][0]))
    config = os.path.join(args.output, "config.json")
    with open(config, "w", encoding="utf-8") as f:
        json.dump(convbert_config("small", num_layers=args.num_layers), f)
    common = [
        "--corpus",
        corpus,
        "--config",
        config,
        "--steps",
        str(args.steps),
        "--checkpoint-every",
        str(args.interval),
        "--batch-size",
        str(args.batch_size),
        "--sequence-length",
        str(args.sequence_length),
    ]
    print(f"machine: {strategy_benchmark.machine()}")
    report = strategy_benchmark.time_strategies(common, os.path.join(args.output, "runs"))
    with open(os.path.join(args.output, "results.json"), "w", encoding="utf-8") as f:
        json.dump(
            {"machine": strategy_benchmark.machine(), "seconds_per_step": report}, f, indent=2
        )
    print()
    print(strategy_benchmark.summary_table(report))


if __name__ == "__main__":
    main()
