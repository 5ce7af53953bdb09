"""Pretrains a ConvBERT with replaced-token detection (ELECTRA-style).

    .venv/bin/python scripts/pretrain.py --wikipedia-sample --size small --steps 1000 \\
        --output runs/small
    .venv/bin/python scripts/pretrain.py --corpus wiki.txt --recipe small --output runs/paper

--recipe small|medium-small|base sets the size and the published settings
(steps, warmup, batch, length, learning rate, masking, generator size, weight
decay); an option given beside it overrides that setting.

Run the same command again after a crash or a kill: it resumes from the last
checkpoint in --output at the same step and learning rate. The discriminator
ends up in <output>/preset, loadable by every task's from_preset.

Several machines: set TF_CONFIG on each (see README) and pass
--strategy multi_worker; on one machine with several GPUs, --strategy mirrored.
"""

import argparse
import json
import sys

from convbert_keras.cli import add_config_arguments
from convbert_keras.cli import add_strategy_arguments
from convbert_keras.cli import config_from_arguments
from convbert_keras.cli import freeze_start_up_objects
from convbert_keras.cli import strategy_from_arguments
from convbert_keras.models.configs import CONVBERT_CONFIGS
from convbert_keras.training.pretraining import PretrainConfig
from convbert_keras.training.recipes import PRETRAINING_RECIPES

MODEL_SETTINGS = ("generator_size", "mask_rate", "objective", "sampling_temperature")
TRAINING_SETTINGS = (
    "steps",
    "batch_size",
    "sequence_length",
    "learning_rate",
    "warmup_steps",
    "weight_decay",
    "checkpoint_every",
    "mixed_precision",
    "seed",
    "jit_compile",
)


def build_parser():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    data = parser.add_argument_group("corpus (one of)")
    data.add_argument("--corpus", nargs="+", help="UTF-8 text files, one document per line")
    data.add_argument(
        "--blank-line-separated",
        action="store_true",
        help="documents are separated by blank lines instead",
    )
    data.add_argument(
        "--tfds", help="a TensorFlow Datasets text dataset, e.g. wikipedia/20230601.en"
    )
    data.add_argument("--tfds-split", default="train")
    data.add_argument("--text-key", default="text", help="the TFDS field holding the text")
    data.add_argument(
        "--wikipedia-sample",
        action="store_true",
        help="the ~100 English Wikipedia articles packaged with gensim (fetched from PyPI)",
    )
    model = parser.add_argument_group("model")
    model.add_argument(
        "--recipe",
        choices=sorted(PRETRAINING_RECIPES),
        help="the original code's settings for a size (see above)",
    )
    model.add_argument(
        "--size",
        choices=sorted(CONVBERT_CONFIGS),
        help="model size (default: small, or the recipe's)",
    )
    model.add_argument(
        "--config", help="JSON file of ConvBertBackbone arguments (instead of --size)"
    )
    model.add_argument("--vocabulary", help="vocab.txt (default: the BERT uncased vocabulary)")
    add_config_arguments(model, PretrainConfig, MODEL_SETTINGS)
    run = parser.add_argument_group("training")
    run.add_argument("--output", required=True, help="run folder (checkpoints, logs, preset)")
    add_config_arguments(run, PretrainConfig, TRAINING_SETTINGS)
    add_strategy_arguments(run)
    return parser


def pretrain_config(args, vocabulary_size):
    """The run's `PretrainConfig`: each setting as given, else the recipe's,
    else the default; the backbone from --config, --size or the recipe."""
    from convbert_keras.models.configs import convbert_config
    from convbert_keras.training.recipes import pretraining_recipe

    recipe = pretraining_recipe(args.recipe) if args.recipe else {}
    if args.config:
        with open(args.config, encoding="utf-8") as f:
            backbone = json.load(f)
    else:
        backbone = convbert_config(args.size or recipe.get("size", "small"))
    return config_from_arguments(
        PretrainConfig,
        args,
        MODEL_SETTINGS + TRAINING_SETTINGS,
        base=recipe,
        backbone=dict(backbone, vocabulary_size=vocabulary_size),
    )


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    freeze_start_up_objects()
    sources = [bool(args.corpus), bool(args.tfds), args.wikipedia_sample]
    if sum(sources) != 1:
        parser.error("pass exactly one of --corpus, --tfds or --wikipedia-sample")
    if args.config and (args.size or args.recipe):
        parser.error("--config gives the model; it cannot go with --size or --recipe")

    try:
        strategy = strategy_from_arguments(args)
        run(args, strategy)
    except (ValueError, OSError) as error:
        parser.exit(2, f"error: {error}\n")


def run(args, strategy):
    from convbert_keras.data import corpus
    from convbert_keras.data import fetch
    from convbert_keras.data import load_wikipedia_sample
    from convbert_keras.models.tokenizer import ConvBertTokenizer
    from convbert_keras.training.pretraining import pretrain

    tokenizer = ConvBertTokenizer(vocabulary=args.vocabulary or fetch("bert_uncased_vocab"))
    config = pretrain_config(args, tokenizer.vocabulary_size())
    if args.corpus:

        def documents():
            return corpus.text_file_documents(args.corpus, args.blank_line_separated)

        documents()  # names a missing file now, not inside tf.data
        description = corpus.describe_text_files(args.corpus, args.blank_line_separated)
    elif args.tfds:

        def documents():
            return corpus.tfds_documents(args.tfds, args.tfds_split, args.text_key)

        description = {"tfds": args.tfds, "split": args.tfds_split, "text_key": args.text_key}
    else:
        description = {"wikipedia_sample": True}
        import tensorflow as tf

        texts = [" ".join(paragraphs) for _, paragraphs in load_wikipedia_sample()]

        def documents():
            return tf.data.Dataset.from_tensor_slices(texts)

    result = pretrain(
        documents, tokenizer, args.output, config, strategy=strategy, corpus=description
    )
    print(json.dumps({k: result[k] for k in ("metrics", "steps", "steps_per_second")}, indent=2))
    print(f"discriminator preset: {args.output}/preset", file=sys.stderr)


if __name__ == "__main__":
    main()
