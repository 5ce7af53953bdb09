"""Fine-tuning and evaluation runs: GLUE, SQuAD, NER and local files."""

import dataclasses
import hashlib
import json
import math
import os
import shutil
import time

import keras
import numpy as np

from convbert_keras.data.options import pipeline_options
from convbert_keras.distribute import is_chief
from convbert_keras.files import write_json
from convbert_keras.models.convbert_task import load_task
from convbert_keras.models.convbert_task import task_for_data
from convbert_keras.models.task_heads import POOLINGS
from convbert_keras.training.optimizers import WarmupLinearDecay
from convbert_keras.training.optimizers import adamw
from convbert_keras.training.progress import StepProgress
from convbert_keras.training.runs import check_finite_loss
from convbert_keras.training.runs import check_run_config
from convbert_keras.training.runs import restore_training
from convbert_keras.training.runs import run_lock
from convbert_keras.training.runs import save_preset
from convbert_keras.training.runs import setting


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
    """Every setting of a fine-tuning run: what `finetune` trains with,
    saves in `<output_dir>/run_config.json` and checks on a resume.

    The model comes from `preset` (pretrained or converted) or, trained
    from scratch, from `size` and `vocabulary`. The defaults are the paper's
    recipe (ELECTRA's layer-wise decay 0.8, 10% warmup).

    Example:
    <!-- docs-test: skip, downloads GLUE's MRPC through TensorFlow Datasets -->
    ```python
    config = FinetuneConfig(preset="runs/small/preset", epochs=3, learning_rate=1e-4)
    finetune(named_data("mrpc"), "runs/mrpc", config)
    ```
    """

    preset: str = setting(None, "preset directory (pretrained or converted)", type=str)
    size: object = setting(
        None,
        "to train from scratch: a published size name, a dict of "
        "ConvBertBackbone arguments or the path of a JSON file of them",
    )
    vocabulary: object = setting(
        None, "vocab.txt (or a list of word pieces) with `size`; default BERT uncased"
    )
    epochs: int = setting(3, "training epochs")
    batch_size: int = setting(32, "global batch, split over replicas")
    learning_rate: float = setting(1e-4, "peak learning rate")
    layer_decay: float = setting(0.8, "learning-rate factor per layer down from the top")
    weight_decay: float = setting(0.01, "AdamW's decoupled weight decay")
    warmup_fraction: float = setting(0.1, "share of the steps in linear warmup")
    sequence_length: int = setting(128, "tokens per input")
    patience: int = setting(None, "stop after this many epochs without improvement", type=int)
    seed: int = setting(0, "seeds the head, dropout, data order and samples")
    pooling: str = setting("cls", "a text classifier's summary of the sequence", choices=POOLINGS)
    reinitialize_layers: int = setting(
        0,
        "encoder layers, from the top, given fresh initial weights before "
        "training (1 for a replaced-token-detection discriminator fine-tuned on few labels)",
    )
    lora_rank: int = setting(
        0,
        "train low-rank updates of this rank (LoRA) in the backbone's target layers and the "
        "head, the backbone's weights frozen; 0 trains everything",
    )
    lora_targets: tuple = setting(
        None,
        "layer names that get LoRA updates (default: the backbone's "
        "default_lora_layer_names(), attention query and value)",
        type=str,
        nargs="+",
    )
    checkpoint_every: int = setting(
        None, "steps between checkpoints (default: one per epoch)", type=int
    )
    jit_compile: bool = setting(True, "train without XLA (to compare)", option="--no-xla")

    def resolved(self):
        """The configuration as the run uses it, checked: a `size` given
        as a JSON file read into a dict."""
        if (self.preset is None) == (self.size is None):
            raise ValueError(
                "Pass exactly one of `preset` (a directory) or `size` (train from scratch)."
            )
        if self.preset is not None and not os.path.isfile(os.path.join(self.preset, "config.json")):
            raise ValueError(f"{self.preset} is not a preset directory (it has no config.json).")
        if self.checkpoint_every is not None and self.checkpoint_every < 1:
            raise ValueError(
                f"`checkpoint_every` must be positive. Received: {self.checkpoint_every}"
            )
        if self.lora_rank < 0:
            raise ValueError(f"`lora_rank` must be 0 (off) or positive. Received: {self.lora_rank}")
        if self.lora_targets is not None and not self.lora_rank:
            raise ValueError("`lora_targets` goes with a positive `lora_rank`.")
        if self.pooling not in POOLINGS:
            raise ValueError(f"`pooling` must be one of {POOLINGS}. Received: {self.pooling!r}")
        size = self.size
        if isinstance(size, str) and size.endswith(".json"):
            with open(size, encoding="utf-8") as f:
                size = json.load(f)
        targets = self.lora_targets and tuple(self.lora_targets)
        return dataclasses.replace(self, size=size, lora_targets=targets)

    def run_record(self):
        """The settings that change what a run computes, as saved in
        `run_config.json`: the preset's absolute path and the vocabulary's
        (or an in-memory one's digest); the checkpoint interval is left out."""
        record = dataclasses.asdict(self)
        record["preset"] = self.preset and os.path.abspath(self.preset)
        record["vocabulary"] = _vocabulary_id(self.vocabulary)
        del record["checkpoint_every"]
        # Recorded only when used: folders from before these settings still resume.
        for name in ("reinitialize_layers", "lora_rank", "lora_targets"):
            if not record[name]:
                del record[name]
        if record.get("lora_targets"):
            record["lora_targets"] = list(record["lora_targets"])
        return record


def _build_task(config, data, backbone=None, tokenizer=None):
    """The task model that `data.kind` calls for, from `config.preset` or
    on a new `backbone`, with the task's own preprocessor defaults."""
    task_cls = task_for_data(data.kind)
    kwargs = task_cls.arguments_for_data(data, config.pooling)
    preprocessor_kwargs = task_cls.preprocessor_defaults(config.sequence_length)
    if config.preset is not None:
        preprocessor = task_cls.preprocessor_cls.from_preset(config.preset, **preprocessor_kwargs)
        return task_cls.from_preset(config.preset, preprocessor=preprocessor, **kwargs)
    preprocessor = task_cls.preprocessor_cls(tokenizer, **preprocessor_kwargs)
    return task_cls(backbone, preprocessor=preprocessor, **kwargs)


def _count(train):
    import tensorflow as tf

    if isinstance(train, tf.data.Dataset):
        count = int(train.cardinality())
        if count < 0:
            count = sum(1 for _ in train)
        return count
    x = train[0]
    return len(x[0]) if isinstance(x, tuple) else len(x)


def evaluate_task(model, data, batch_size=64):
    """Official metrics of `model` on each of `data.validation`'s sets."""
    results = {}
    for name, examples in data.validation.items():
        scores = model.official_scores(examples, data, batch_size)
        results[name] = {
            k: float(v) for k, v in scores.items() if k in data.metrics or k in ("exact", "f1")
        }
    return results


def _data_digest(train):
    """A digest of in-memory training data (`None` for a `tf.data`
    stream): another file or sample shows up as another digest."""
    import tensorflow as tf

    if isinstance(train, tf.data.Dataset):
        return None
    x, y = train
    # Every example and label in full (a repr would elide long arrays).
    labels = y.tolist() if isinstance(y, np.ndarray) else y
    return hashlib.sha256(json.dumps([x, labels]).encode("utf-8")).hexdigest()[:16]


def _vocabulary_id(vocabulary):
    """A vocabulary file's path, or a digest of an in-memory list."""
    if vocabulary is None or isinstance(vocabulary, (str, os.PathLike)):
        return vocabulary and os.path.abspath(vocabulary)
    return hashlib.sha256("\n".join(vocabulary).encode("utf-8")).hexdigest()[:16]


def _training_examples(data):
    """`data.train` as a dataset of unbatched `(x, y)` examples."""
    import tensorflow as tf

    if isinstance(data.train, tf.data.Dataset):
        return data.train
    x, y = data.train
    if isinstance(x, list) and x and isinstance(x[0], list):
        # Words and tags per sentence: ragged.
        x, y = tf.ragged.constant(x), tf.ragged.constant(y)
    return tf.data.Dataset.from_tensor_slices((x, y))


def training_batches(model, data, batch_size, seed, epochs, start_epoch=0, skip=0):
    """The preprocessed training batches of epochs `start_epoch` to
    `epochs - 1`, the first `skip` batches left out: each epoch the examples
    in an order of its own, drawn under `(seed, epoch)`, so that a resumed
    run sees the batches an uninterrupted one would."""
    import tensorflow as tf

    examples = _training_examples(data)
    count = _count(data.train)
    dataset = None
    for epoch in range(start_epoch, epochs):
        order = examples.shuffle(count, seed=seed * 1000 + epoch, reshuffle_each_iteration=False)
        batches = model.training_batches(order, batch_size)
        if epoch == start_epoch:
            batches = batches.skip(skip)
        dataset = batches if dataset is None else dataset.concatenate(batches)
    if not model.batches_preprocessed:
        # One map over every epoch: the preprocessor is traced (and builds
        # its tokenizer's kernels) once per run rather than once per epoch.
        dataset = dataset.map(model.preprocess_samples, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(pipeline_options())


def _steps_per_epoch(model, data, batch_size, results):
    # Counted once per run: a question answerer preprocesses every example.
    if "train_rows" not in results:
        results["train_rows"] = model.count_training_rows(
            _training_examples(data), _count(data.train)
        )
    return math.ceil(results["train_rows"] / batch_size)


def _stopped_early(results, patience, metric):
    """Whether the recorded epochs end `patience` epochs past the best:
    decided from the records, which a resumed run rebuilds exactly."""
    epochs = results["epochs"]
    if not patience or not epochs:
        return False
    first_set = next(k for k in epochs[-1] if k not in ("epoch", "loss"))
    return epochs[-1]["epoch"] - _best(epochs, lambda r: r[first_set][metric])["epoch"] >= patience


def _best(epochs, score):
    """The first epoch record with the highest `score(record)`."""
    best = None
    for record in epochs:
        if best is None or score(record) > score(best):
            best = record
    return best


class _FinetuneProgress(keras.callbacks.Callback):
    """Training steps counted across epochs and calls: a checkpoint every
    `checkpoint_every` steps and at every epoch end; at an epoch end the
    official metrics (`results["epochs"]`, one record per epoch, replaced
    when an epoch is trained again after a kill), the best epoch's model
    to `<output>/preset`, TensorBoard scalars, and early stopping after
    `patience` epochs without improvement."""

    def __init__(self, run, steps_per_epoch, checkpoint_every, manager, restored_metrics):
        super().__init__()
        self.run = run
        self.steps_per_epoch = steps_per_epoch
        self.checkpoint_every = checkpoint_every
        self.manager = manager
        self.restored_metrics = restored_metrics

    def on_epoch_begin(self, epoch, logs=None):
        # Keras zeroes the metrics as `fit` starts; a run resumed mid-epoch
        # puts back the loss accumulated before the kill.
        for variable in self.model.metrics_variables:
            if variable.path in self.restored_metrics:
                variable.assign(self.restored_metrics[variable.path])
        self.restored_metrics = {}

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if step % self.steps_per_epoch and step % self.checkpoint_every:
            return
        # Before anything is saved, so that a diverged state never is.
        check_finite_loss(logs, step, self.manager)
        if step % self.steps_per_epoch == 0:
            self._end_epoch(step // self.steps_per_epoch, logs or {})
        else:
            self.manager.save(checkpoint_number=step)

    def _end_epoch(self, epoch, logs):
        import tensorflow as tf

        run = self.run
        data, results = run["data"], run["results"]
        main = data.metrics[0]
        scores = evaluate_task(self.model, data, run["batch_size"])
        first = next(iter(scores.values()))
        record = {"epoch": epoch, "loss": float(logs.get("loss", float("nan"))), **scores}
        results["epochs"] = [r for r in results["epochs"] if r["epoch"] < epoch] + [record]
        first_set = next(iter(scores))
        best = _best(results["epochs"], lambda r: r[first_set][main])
        results["best"] = {
            "epoch": best["epoch"],
            "metric": main,
            "score": best[first_set][main],
            **{k: v for k, v in best.items() if k not in ("epoch", "loss")},
        }
        if run.get("verbose"):
            chosen = " (best so far: saved)" if best["epoch"] == epoch else ""
            print(
                f"epoch {epoch}/{run['epochs']}: loss {record['loss']:.4f}, "
                f"{first_set} {main} {first[main]:.4f}{chosen}",
                flush=True,
            )
        if run["chief"]:
            if best["epoch"] == epoch:
                save_preset(self.model, run["preset"])
            write_json(run["results_path"], results)
            with run["writer"].as_default(step=epoch):
                tf.summary.scalar("epoch_loss", record["loss"])
                for name, value in first.items():
                    tf.summary.scalar(f"val_{name}", value)
            run["writer"].flush()
        self.manager.save(checkpoint_number=epoch * self.steps_per_epoch)
        self.model.reset_metrics()
        if _stopped_early(results, run["patience"], main):
            self.model.stop_training = True


def finetune(data, output_dir, config, strategy=None, verbose=1):
    """Fine-tunes a ConvBERT task model with the paper's recipe.

    AdamW with decoupled weight decay (not on LayerNorm and biases), linear
    warmup over `warmup_fraction` of the steps then linear decay, ELECTRA's
    layer-wise learning-rate decay, gradients clipped to norm 1. After
    every epoch the official metrics are computed on the validation sets;
    the best epoch (by the first metric) is kept as a keras-hub preset in
    `<output_dir>/preset`, `results.json` records every epoch once and,
    when `data.test` is given, that model's test scores (`"test"`),
    TensorBoard logs go to `<output_dir>/logs`, and training stops early
    after `patience` epochs without improvement.

    The run checkpoints every `checkpoint_every` steps and at every epoch
    end (`<output_dir>/checkpoints`); killed and called again with the same
    arguments it resumes mid-epoch at the same step, data position and
    random streams, and ends as an uninterrupted run would. Called again
    once finished, it says so and returns the results. Other settings on a
    used folder are refused, the setting named (`run_config.json`).

    Args:
        data: a `FinetuneData` (`convbert_keras.data.finetune_data`:
            `named_data`, `glue_data`, `table_data`, `conll_data`,
            `squad_data`).
        output_dir: the run folder.
        config: a `FinetuneConfig`.
        strategy: a `tf.distribute` strategy (`convbert_keras.distribute.
            make_strategy`); `config.batch_size` is the global batch.

    Returns: the results dict (as written to `results.json`).
    """
    import tensorflow as tf

    strategy = strategy or tf.distribute.get_strategy()
    config = config.resolved()
    train_count = _check_setup(config, data, strategy)
    os.makedirs(output_dir, exist_ok=True)
    chief = is_chief(strategy)
    run_config = _run_config(config, data, train_count, strategy)
    # One process per run folder: a second launch is refused at once.
    with run_lock(output_dir, enabled=chief):
        config_path = check_run_config(output_dir, run_config, "fine-tuning run")
        results = _read_results(output_dir, train_count)
        if results.get("finished"):
            return _already_finished(output_dir, data, config, results, chief, verbose)

        keras.utils.set_random_seed(config.seed)
        with strategy.scope():
            model, steps_per_epoch = _build_model(config, data, results)
        manager, latest = restore_training(model, output_dir, chief, max_to_keep=2)
        if chief:
            write_json(config_path, run_config)
        step = int(model.optimizer.iterations.numpy())
        if latest and verbose:
            print(f"Resuming from {latest} at step {step}.")
        # Epochs trained again after a kill replace their records.
        results["epochs"] = [r for r in results["epochs"] if r["epoch"] * steps_per_epoch <= step]
        run = _run_state(output_dir, data, config, results, chief)
        run["verbose"] = verbose and chief
        run["epochs"] = config.epochs
        progress = _FinetuneProgress(
            run,
            steps_per_epoch,
            config.checkpoint_every or steps_per_epoch,
            manager,
            {v.path: np.array(v) for v in model.metrics_variables}
            if step % steps_per_epoch
            else {},
        )
        start = time.time()
        _train(model, data, config, steps_per_epoch, step, progress, results, verbose)
        results["train_seconds"] = results.get("train_seconds", 0.0) + time.time() - start
        return _finish(run, config, manager)


def _run_config(config, data, train_count, strategy):
    """What `run_config.json` holds: the settings, and what identifies the
    data (its kind, classes, size and a digest of in-memory examples)."""
    return {
        "task": {
            "kind": data.kind,
            "num_classes": data.num_classes,
            "train_examples": train_count,
            "train_sha256": _data_digest(data.train),
        },
        **config.run_record(),
        "replicas": strategy.num_replicas_in_sync,
    }


def _run_state(output_dir, data, config, results, chief):
    """What the epoch-end callback reads and writes."""
    import tensorflow as tf

    return {
        "data": data,
        "results": results,
        "results_path": os.path.join(output_dir, "results.json"),
        "chief": chief,
        "preset": os.path.join(output_dir, "preset"),
        "batch_size": config.batch_size,
        "patience": config.patience,
        "writer": tf.summary.create_file_writer(os.path.join(output_dir, "logs"))
        if chief
        else None,
    }


def _finish(run, config, manager):
    """Closes the run: the chief scores the test sets once with the chosen
    model and marks the results finished; other workers drop their scratch
    checkpoints."""
    results = run["results"]
    if run["writer"] is not None:
        run["writer"].close()
    if not run["chief"]:
        shutil.rmtree(manager.directory, ignore_errors=True)
        return results
    if run["data"].test:
        results["test"] = evaluate_test(run["preset"], run["data"], config.batch_size)
    results["finished"] = True
    write_json(run["results_path"], results)
    return results


def _check_setup(config, data, strategy):
    """Refuses a batch that does not split over the replicas and an empty
    training set; the number of training examples."""
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise ValueError(
            f"`batch_size` {config.batch_size} must divide evenly over {replicas} replicas."
        )
    train_count = _count(data.train)
    if train_count == 0:
        raise ValueError("The training set is empty.")
    return train_count


def _read_results(output_dir, train_count):
    results_path = os.path.join(output_dir, "results.json")
    if os.path.exists(results_path):
        with open(results_path, encoding="utf-8") as f:
            return json.load(f)
    return {"epochs": [], "best": None, "train_examples": train_count}


def _already_finished(output_dir, data, config, results, chief, verbose):
    if verbose:
        print(f"{output_dir} is complete; nothing to train.")
    if data.test and "test" not in results and chief:
        preset = os.path.join(output_dir, "preset")
        results["test"] = evaluate_test(preset, data, config.batch_size)
        write_json(os.path.join(output_dir, "results.json"), results)
    return results


def _build_model(config, data, results):
    """The compiled, built task model (under the caller's strategy scope)
    and the steps in one epoch."""
    from convbert_keras.data import fetch
    from convbert_keras.models.backbone import ConvBertBackbone
    from convbert_keras.models.configs import convbert_config
    from convbert_keras.models.tokenizer import ConvBertTokenizer

    backbone = tokenizer = None
    if config.preset is None:
        tokenizer = ConvBertTokenizer(vocabulary=config.vocabulary or fetch("bert_uncased_vocab"))
        size = config.size if isinstance(config.size, dict) else convbert_config(config.size)
        backbone = ConvBertBackbone(**dict(size, vocabulary_size=tokenizer.vocabulary_size()))
    model = _build_task(config, data, backbone, tokenizer)
    model.backbone.reinitialize_top_layers(config.reinitialize_layers)
    if config.lora_rank:
        _enable_lora(model.backbone, config.lora_rank, config.lora_targets)
    if model.backbone.max_sequence_length < config.sequence_length:
        raise ValueError(
            f"`sequence_length` {config.sequence_length} exceeds the model's "
            f"{model.backbone.max_sequence_length} positions."
        )
    steps_per_epoch = _steps_per_epoch(model, data, config.batch_size, results)
    steps = config.epochs * steps_per_epoch
    schedule = WarmupLinearDecay(config.learning_rate, int(config.warmup_fraction * steps), steps)
    model.compile(
        optimizer=adamw(
            schedule, config.weight_decay, config.layer_decay, model.backbone.num_layers
        ),
        jit_compile=config.jit_compile,
    )
    first = next(iter(training_batches(model, data, config.batch_size, config.seed, 1)))
    model(first[0])
    model.optimizer.build(model.trainable_variables)
    return model, steps_per_epoch


def _enable_lora(backbone, rank, targets):
    """keras-hub's `enable_lora` on the named layers (default: the
    backbone's `default_lora_layer_names()`), refusing a name that matches
    no layer: it would train nothing there, silently."""
    names = {part for variable in backbone.weights for part in variable.path.split("/")}
    targets = targets or backbone.default_lora_layer_names()
    unknown = sorted(set(targets) - names)
    if unknown:
        raise ValueError(
            f"The backbone has no layer named {unknown}; LoRA targets are layer names "
            "such as query_dense, value_dense, kernel_dense or conv_value_dense."
        )
    backbone.enable_lora(rank, target_layer_names=list(targets))


def _train(model, data, config, steps_per_epoch, step, progress, results, verbose):
    """Trains from `step` to the last epoch, unless stopped early already."""
    steps = config.epochs * steps_per_epoch
    if step >= steps or _stopped_early(results, config.patience, data.metrics[0]):
        return
    dataset = training_batches(
        model,
        data,
        config.batch_size,
        config.seed,
        config.epochs,
        step // steps_per_epoch,
        step % steps_per_epoch,
    )
    callbacks = [progress]
    if verbose:
        callbacks.append(StepProgress(steps, step, every=steps_per_epoch, label="fine-tuning: "))
    # The batches are preprocessed already: keras.Model.fit, not the
    # keras-hub task's, which would run the preprocessor again.
    keras.Model.fit(
        model,
        dataset,
        epochs=1,
        steps_per_epoch=steps - step,
        shuffle=False,
        callbacks=callbacks,
        verbose=0,
    )


def evaluate_test(preset, data, batch_size=64):
    """Official metrics of the chosen model (the task preset written by
    `finetune`) on `data.test`, which nothing was chosen on."""
    return evaluate_task(load_task(preset), data._replace(validation=data.test), batch_size)
