"""The command-line tools: argument parsing over the library's functions.

Each module's `main(argv=None)` is a console script (`setup.cfg`) and has a
wrapper in `scripts/`.
"""

import gc


def freeze_start_up_objects():
    """Takes what the imports made (TensorFlow, Keras and keras-hub: over
    500,000 objects that live as long as the process) out of Python's
    garbage collections, which would otherwise walk them again each time
    tracing a model fills a generation: a 20-step tiny pretraining run
    ends about 4 s sooner (20 -> 16 s on a 2-core machine). Each tool
    calls it once its imports are done."""
    gc.freeze()


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


def _option(field):
    return field.metadata.get("option", "--" + field.name.replace("_", "-"))


def add_config_arguments(group, config_cls, names):
    """Options for the fields `names` of a run configuration dataclass
    (`PretrainConfig`, `FinetuneConfig`), with its help texts and defaults.

    Every option defaults to `None` (not given), so that
    `config_from_arguments` can tell a value given on the command line from
    one a recipe or the dataclass supplies."""
    import dataclasses

    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    for name in names:
        field = fields[name]
        default = field.default
        if isinstance(default, bool):
            # A switch that turns the setting off, named in the metadata.
            group.add_argument(
                _option(field),
                dest=name,
                action="store_const",
                const=not default,
                help=field.metadata["help"],
            )
            continue
        value_type = field.metadata.get("type", type(default))
        shown = "" if default is None else f" (default {default})"
        group.add_argument(
            _option(field),
            dest=name,
            type=value_type,
            choices=field.metadata.get("choices"),
            nargs=field.metadata.get("nargs"),
            help=field.metadata["help"] + shown,
        )


def config_from_arguments(config_cls, args, names, base=None, **fixed):
    """A `config_cls` from the options of `add_config_arguments`: each
    setting as given on the command line, else `base`'s (a recipe), else
    the dataclass default; `fixed` settings the script decides."""
    import dataclasses

    known = {f.name for f in dataclasses.fields(config_cls)}
    values = {k: v for k, v in (base or {}).items() if k in known}
    values.update({n: getattr(args, n) for n in names if getattr(args, n) is not None})
    return config_cls(**values, **fixed)
