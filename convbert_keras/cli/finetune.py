"""Fine-tunes and evaluates a ConvBERT task model with the paper's recipe.

A named task (GLUE through TensorFlow Datasets, SQuAD, or the built-in real data):
    .venv/bin/python scripts/finetune.py --task mrpc --preset runs/small/preset --output runs/mrpc
    .venv/bin/python scripts/finetune.py --task rotten_tomatoes --size small --output runs/rt

Your own files (CSV, TSV or JSONL; columns named on the command line):
    .venv/bin/python scripts/finetune.py --train train.csv --validation dev.csv \\
        --text-columns review --label-column sentiment --labels neg pos \\
        --preset P --output runs/mine
    (--labels omitted: regression on a numeric label column)

CoNLL-style NER files (word ... tag per line):
    .venv/bin/python scripts/finetune.py --train-conll train.txt --validation-conll dev.txt ...

The best epoch (by the validation set) is written to <output>/preset;
results.json holds the official metrics of every epoch and, with --test /
--test-conll (or a named task with a test split: rotten_tomatoes), that model's
test scores, computed once at the end. The run checkpoints every
--checkpoint-every steps and at every epoch end: run the same command again
after a kill and it resumes where it stopped, mid-epoch included; once
finished it says so. Several GPUs: --strategy mirrored; several machines:
TF_CONFIG on each and --strategy multi_worker (see README).
"""

import argparse
import json
import sys

from convbert_keras.cli import add_config_arguments
from convbert_keras.cli import add_strategy_arguments
from convbert_keras.cli import config_from_arguments
from convbert_keras.cli import freeze_start_up_objects
from convbert_keras.cli import strategy_from_arguments
from convbert_keras.data.finetune_data import TASK_NAMES
from convbert_keras.data.glue import GLUE_TASKS
from convbert_keras.models.configs import CONVBERT_CONFIGS
from convbert_keras.training.finetuning import FinetuneConfig

TASKS = sorted(GLUE_TASKS) + list(TASK_NAMES)
TRAINING_SETTINGS = (
    "epochs",
    "batch_size",
    "learning_rate",
    "layer_decay",
    "weight_decay",
    "warmup_fraction",
    "sequence_length",
    "patience",
    "pooling",
    "reinitialize_layers",
    "lora_rank",
    "lora_targets",
    "seed",
    "checkpoint_every",
    "jit_compile",
)


def build_parser():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    data = parser.add_argument_group(
        "data (one of --task, --train/--validation, --train-conll/--validation-conll)"
    )
    data.add_argument("--task", help=f"one of: {', '.join(TASKS)}")
    data.add_argument("--data-dir", help="TensorFlow Datasets data directory")
    data.add_argument("--train", help="training file (.csv, .tsv or .jsonl)")
    data.add_argument("--validation", help="validation file, same columns (chooses the best epoch)")
    data.add_argument("--test", help="test file, same columns: scored once, with the chosen model")
    data.add_argument(
        "--format", choices=["csv", "tsv", "jsonl"], help="default: from the extension"
    )
    data.add_argument("--text-columns", nargs="+", help="one column, or two for sentence pairs")
    data.add_argument("--label-column", default="label")
    data.add_argument(
        "--labels", nargs="+", help="the label values, in id order (omit for regression)"
    )
    data.add_argument("--train-conll", help="CoNLL-style NER training file")
    data.add_argument("--validation-conll", help="CoNLL-style NER validation file")
    data.add_argument("--test-conll", help="CoNLL-style NER test file")
    data.add_argument(
        "--max-train-examples",
        type=int,
        help="rotten_tomatoes: a random sample under --seed; other named tasks: the first N",
    )
    data.add_argument("--max-eval-examples", type=int)
    model = parser.add_argument_group("model (one of)")
    model.add_argument("--preset", help="preset directory (pretrained or converted)")
    model.add_argument("--size", choices=sorted(CONVBERT_CONFIGS), help="train from scratch")
    model.add_argument("--config", help="JSON of ConvBertBackbone arguments, to train from scratch")
    model.add_argument("--vocabulary", help="vocab.txt with --size (default: BERT uncased)")
    run = parser.add_argument_group("training")
    run.add_argument("--output", required=True)
    add_config_arguments(run, FinetuneConfig, TRAINING_SETTINGS)
    add_strategy_arguments(run)
    return parser


def load_data(args, parser, seed):
    """The `FinetuneData` the options name; `seed` draws a sample of a named task."""
    from convbert_keras.data import finetune_data
    from convbert_keras.data import read_conll

    chosen = [
        bool(args.task),
        bool(args.train or args.validation),
        bool(args.train_conll or args.validation_conll),
    ]
    if sum(chosen) != 1:
        parser.error(
            "give exactly one of --task, --train/--validation or --train-conll/--validation-conll"
        )
    limits = dict(
        max_train_examples=args.max_train_examples, max_eval_examples=args.max_eval_examples
    )
    if args.task:
        return finetune_data.named_data(args.task, args.data_dir, seed=seed, **limits)
    if args.train_conll:
        if not args.validation_conll:
            parser.error("--train-conll needs --validation-conll")
        return finetune_data.conll_data(
            read_conll(args.train_conll),
            read_conll(args.validation_conll),
            test_sentences=read_conll(args.test_conll) if args.test_conll else None,
        )
    if not (args.train and args.validation and args.text_columns):
        parser.error("local files need --train, --validation and --text-columns")
    return finetune_data.table_data(
        args.train,
        args.validation,
        args.text_columns,
        args.label_column,
        args.labels,
        args.format,
        test=args.test,
    )


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    freeze_start_up_objects()
    try:
        strategy = strategy_from_arguments(args)
    except ValueError as error:
        parser.exit(2, f"error: {error}\n")
    run(args, parser, strategy)


def run(args, parser, strategy):
    if sum(x is not None for x in (args.preset, args.size, args.config)) != 1:
        parser.error("give exactly one of --preset, --size or --config")
    from convbert_keras.training.finetuning import finetune

    try:
        config = config_from_arguments(
            FinetuneConfig,
            args,
            TRAINING_SETTINGS,
            preset=args.preset,
            size=args.size or args.config,
            vocabulary=args.vocabulary,
        )
        data = load_data(args, parser, config.seed)
        results = finetune(data, args.output, config, strategy=strategy)
    except (ValueError, OSError) as error:
        parser.exit(2, f"error: {error}\n")
    print(json.dumps({"best": results["best"], "test": results.get("test")}, indent=2))
    print(f"best model: {args.output}/preset", file=sys.stderr)


if __name__ == "__main__":
    main()
