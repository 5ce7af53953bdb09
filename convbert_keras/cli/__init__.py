"""The command-line tools: argument parsing over the library's functions.

Each module's `main(argv=None)` is a console script (`setup.cfg`) and has a
wrapper in `scripts/`.
"""


def add_strategy_arguments(group):
    """`--strategy`, `--tpu` and `--cpu-devices` (`make_strategy`'s
    arguments) on an argparse group."""
    from convbert_keras.distribute import STRATEGIES

    group.add_argument("--strategy", choices=STRATEGIES, default="default")
    group.add_argument("--tpu", help="TPU name or address for --strategy tpu")
    group.add_argument(
        "--cpu-devices",
        type=int,
        help="with --strategy mirrored on a machine "
        "without GPUs: replicas on this many logical CPU devices (for trying it)",
    )


def strategy_from_arguments(args):
    """The strategy `add_strategy_arguments` asked for. Call it before other
    TensorFlow work: a multi-worker set-up must come first."""
    from convbert_keras.distribute import make_strategy

    return make_strategy(args.strategy, args.tpu, args.cpu_devices)
