"""Converts a ConvBERT checkpoint into a keras-hub preset directory.

    python scripts/convert_checkpoint.py --source hf --input conv-bert-small/ \
        --output presets/convbert_small
    python scripts/convert_checkpoint.py --source tf1 --input ckpt/model.ckpt-1000000 \
        --size small --vocabulary vocab.txt --output presets/convbert_small

The result loads with `ConvBertBackbone.from_preset(OUTPUT)`; a checkpoint of
a task model (ConvBertForSequenceClassification, ...) keeps its head and also
loads with the matching keras-hub task class, e.g.
`keras_hub.models.TextClassifier.from_preset(OUTPUT)`.
"""

import argparse
import sys

from convbert_keras.cli import freeze_start_up_objects
from convbert_keras.convert import SOURCES
from convbert_keras.convert import convert_checkpoint
from convbert_keras.models.configs import CONVBERT_CONFIGS
from convbert_keras.models.convbert_task import hf_architectures


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--source",
        choices=SOURCES,
        required=True,
        help="hf: a transformers save_pretrained directory or hf:// handle; "
        "tf1: a checkpoint of the original TF 1.15 code",
    )
    parser.add_argument(
        "--input", required=True, help="checkpoint directory, hf://ORG/NAME handle, or prefix"
    )
    parser.add_argument("--output", required=True, help="preset directory to write")
    parser.add_argument("--config", help="tf1: the model's JSON config")
    parser.add_argument(
        "--size", choices=sorted(CONVBERT_CONFIGS), help="tf1: a published size instead of --config"
    )
    parser.add_argument("--vocabulary", help="vocab.txt to ship with the preset")
    parser.add_argument(
        "--task",
        default="auto",
        choices=["auto", "backbone", *hf_architectures()],
        help="auto: from config.json's architectures (heads included); backbone: the encoder alone",
    )
    args = parser.parse_args(argv)
    freeze_start_up_objects()
    try:
        backbone = convert_checkpoint(
            args.source,
            args.input,
            args.output,
            config=args.config,
            size=args.size,
            vocabulary=args.vocabulary,
            task=args.task,
        )
    except (ValueError, FileNotFoundError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    parameters = backbone.count_params()
    print(f"wrote {args.output}: {type(backbone).__name__} with {parameters:,} parameters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
