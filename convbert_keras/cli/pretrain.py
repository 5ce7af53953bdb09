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

from convbert_keras.cli import add_strategy_arguments
from convbert_keras.cli import strategy_from_arguments


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
        choices=["small", "medium-small", "base"],
        help="the original code's settings for a size (see above)",
    )
    model.add_argument(
        "--size",
        choices=["small", "medium-small", "base"],
        help="model size (default: small, or the recipe's)",
    )
    model.add_argument(
        "--config", help="JSON file of ConvBertBackbone arguments (instead of --size)"
    )
    model.add_argument("--vocabulary", help="vocab.txt (default: the BERT uncased vocabulary)")
    model.add_argument(
        "--generator-size",
        type=float,
        help="generator width over the discriminator's (default 0.25)",
    )
    model.add_argument("--mask-rate", type=float, help="share of tokens masked (default 0.15)")
    model.add_argument(
        "--objective",
        choices=["rtd", "mlm"],
        default="rtd",
        help="replaced-token detection (the paper's), or masked LM (the control)",
    )
    model.add_argument(
        "--sampling-temperature",
        type=float,
        default=1.0,
        help="temperature of the generator's samples (1 in the paper)",
    )
    run = parser.add_argument_group("training")
    run.add_argument("--output", required=True, help="run folder (checkpoints, logs, preset)")
    run.add_argument("--steps", type=int, help="default 1000")
    run.add_argument("--batch-size", type=int, help="global batch (default 32)")
    run.add_argument("--sequence-length", type=int, help="default 128")
    run.add_argument("--learning-rate", type=float, help="peak (default 5e-4)")
    run.add_argument("--warmup-steps", type=int, help="default: 10%% of --steps")
    run.add_argument("--weight-decay", type=float, help="default 0.01")
    run.add_argument("--checkpoint-every", type=int, default=100)
    run.add_argument("--mixed-precision", choices=["mixed_float16", "mixed_bfloat16"])
    add_strategy_arguments(run)
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--no-xla", action="store_true", help="train without XLA (to compare)")
    return parser


DEFAULTS = dict(
    size="small",
    steps=1000,
    batch_size=32,
    sequence_length=128,
    learning_rate=5e-4,
    warmup_steps=None,
    generator_size=0.25,
    mask_rate=0.15,
    weight_decay=0.01,
)


def fill_defaults(args):
    """Settings not given: the recipe's, else the script's defaults."""
    from convbert_keras.recipes import pretraining_recipe

    recipe = pretraining_recipe(args.recipe) if args.recipe else {}
    for name, default in DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, recipe.get(name, default))


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    sources = [bool(args.corpus), bool(args.tfds), args.wikipedia_sample]
    if sum(sources) != 1:
        parser.error("pass exactly one of --corpus, --tfds or --wikipedia-sample")
    if args.config and (args.size or args.recipe):
        parser.error("--config gives the model; it cannot go with --size or --recipe")
    fill_defaults(args)

    try:
        strategy = strategy_from_arguments(args)
        run(args, strategy)
    except (ValueError, OSError) as error:
        parser.exit(2, f"error: {error}\n")


def run(args, strategy):
    from convbert_keras.data import corpus
    from convbert_keras.data import fetch
    from convbert_keras.data import load_wikipedia_sample
    from convbert_keras.models.configs import convbert_config
    from convbert_keras.models.tokenizer import ConvBertTokenizer
    from convbert_keras.pretraining import pretrain

    tokenizer = ConvBertTokenizer(vocabulary=args.vocabulary or fetch("bert_uncased_vocab"))
    if args.config:
        with open(args.config, encoding="utf-8") as f:
            backbone_kwargs = json.load(f)
    else:
        backbone_kwargs = convbert_config(args.size)
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
        documents,
        tokenizer,
        backbone_kwargs,
        args.output,
        args.steps,
        batch_size=args.batch_size,
        sequence_length=args.sequence_length,
        learning_rate=args.learning_rate,
        warmup_steps=args.warmup_steps,
        checkpoint_every=args.checkpoint_every,
        generator_size=args.generator_size,
        mask_rate=args.mask_rate,
        weight_decay=args.weight_decay,
        mixed_precision=args.mixed_precision,
        strategy=strategy,
        seed=args.seed,
        objective=args.objective,
        sampling_temperature=args.sampling_temperature,
        corpus=description,
        jit_compile=not args.no_xla,
    )
    print(json.dumps({k: result[k] for k in ("metrics", "steps", "steps_per_second")}, indent=2))
    print(f"discriminator preset: {args.output}/preset", file=sys.stderr)


if __name__ == "__main__":
    main()
