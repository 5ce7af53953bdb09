"""The main job: raw Rotten Tomatoes snippets to a trained ConvBERT classifier.

    python scripts/demo.py                 # or: make demo

Pretraining, GLUE/own-file fine-tuning and TF Serving export are separate
issues; this runs the classifier part end to end on the built-in data.
"""

import argparse

from convbert_keras.demo import run_demo


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="saved_models/presets/convbert_sentiment",
                        help="preset directory to write")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--sequence-length", type=int, default=64)
    args = parser.parse_args(argv)
    run_demo(args.output, epochs=args.epochs, sequence_length=args.sequence_length)


if __name__ == "__main__":
    main()
