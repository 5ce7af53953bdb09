"""Does pretraining pay? Test accuracy with few labels, over seeds.

    .venv/bin/python scripts/compare_pretraining.py --output runs/compare

For every seed: 1,000 labelled Rotten Tomatoes snippets are drawn; ConvBERT
pretrained with replaced-token detection (convbert_rtd), the equal-budget BERT
ablation (bert_rtd, conv_type="none"), ConvBERT pretrained with plain masked LM
(convbert_mlm, the control), ConvBERT from scratch, and a bag-of-words
baseline are fine-tuned on them, and the two replaced-token-detection runs
once more with their top layer re-initialised (convbert_rtd_reinit,
bert_rtd_reinit: the same pretraining, see ConvBertBackbone.
reinitialize_top_layers); the epoch is chosen on validation movies and
the score read on test movies. Prints a Markdown table (mean, sd, per seed);
summary.json and every run's results.json are in --output. Run it again after
a kill: finished runs are reused, unfinished ones resumed.
"""

import argparse

from convbert_keras.cli import freeze_start_up_objects
from convbert_keras.lab.comparison import ARMS


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output", default="runs/compare")
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--labels", type=int, default=1000)
    parser.add_argument("--pretrain-steps", type=int, default=1500)
    parser.add_argument("--pretrain-learning-rate", type=float, default=1e-3)
    parser.add_argument("--generator-size", type=float, default=0.25)
    parser.add_argument("--sampling-temperature", type=float, default=1.0)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument(
        "--pooling",
        choices=["cls", "mean"],
        default="mean",
        help="the classifiers' summary of the sequence (mean: see README)",
    )
    args = parser.parse_args(argv)
    freeze_start_up_objects()
    from convbert_keras.lab.comparison import compare_pretraining
    from convbert_keras.lab.comparison import summary_table

    try:
        accuracy = compare_pretraining(
            args.output,
            args.arms,
            args.seeds,
            args.labels,
            pretrain_steps=args.pretrain_steps,
            pretrain_learning_rate=args.pretrain_learning_rate,
            generator_size=args.generator_size,
            sampling_temperature=args.sampling_temperature,
            epochs=args.epochs,
            learning_rate=args.learning_rate,
            pooling=args.pooling,
        )
    except ValueError as error:
        parser.exit(2, f"error: {error}\n")
    print(summary_table(accuracy))


if __name__ == "__main__":
    main()
