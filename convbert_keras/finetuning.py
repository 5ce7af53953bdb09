"""Fine-tuning and evaluation runs: GLUE, SQuAD, NER and local files."""

import collections
import hashlib
import json
import math
import os
import shutil
import time

import keras
import numpy as np

from convbert_keras import metrics as official
from convbert_keras.distribute import is_chief
from convbert_keras.files import write_json
from convbert_keras.optimizers import WarmupLinearDecay
from convbert_keras.optimizers import adamw
from convbert_keras.runs import check_run_config
from convbert_keras.runs import restore_training
from convbert_keras.runs import save_preset

# kind: "classification" (num_classes 1 = regression), "token_classification"
# or "question_answering". train: (x, y) in memory or a tf.data.Dataset of
# unbatched (x, y). validation: {name: (x, y)} (y: labels, tag lists, or for
# QA the gold answer lists). metrics: names; the first picks the best epoch.
# test: {name: (x, y)} like validation, or None: never used for choosing,
# scored once with the chosen model at the end.
FinetuneData = collections.namedtuple(
    "FinetuneData",
    "kind train validation num_classes metrics label_names allow_no_answer test",
    defaults=(None, False, None),
)

TASK_NAMES = ("rotten_tomatoes", "wnut16", "squad_v1", "squad_v2")


def _take(dataset, limit):
    return dataset if limit is None else dataset.take(limit)


def glue_data(name, data_dir=None, max_train_examples=None, max_eval_examples=None):
    """A GLUE task from TFDS as `FinetuneData`."""
    from convbert_keras.data.glue import glue_task
    from convbert_keras.data.glue import load_glue

    task = glue_task(name)
    validation = {
        split: _take(load_glue(name, split, data_dir), max_eval_examples)
        for split in task.validation_splits
    }
    return FinetuneData(
        "classification",
        _take(load_glue(name, "train", data_dir), max_train_examples),
        validation,
        task.num_classes,
        task.metrics,
    )


def squad_data(version, data_dir=None, max_train_examples=None, max_eval_examples=None):
    """SQuAD v1.1 (`squad_v1`) or v2.0 (`squad_v2`) from TFDS."""
    from convbert_keras.data.glue import load_squad

    train, _ = load_squad(version, "train", data_dir)
    validation, gold = load_squad(version, "validation", data_dir)
    if max_eval_examples is not None:
        validation, gold = validation.take(max_eval_examples), gold[:max_eval_examples]
    questions = [
        (q.decode("utf-8"), c.decode("utf-8")) for (q, c), _ in validation.as_numpy_iterator()
    ]
    return FinetuneData(
        "question_answering",
        _take(train, max_train_examples),
        {"validation": ([q for q, _ in questions], [c for _, c in questions], gold)},
        None,
        ("f1", "exact"),
        allow_no_answer=version == "squad_v2",
    )


def table_data(
    train, validation, text_columns, label_column, labels=None, file_format=None, test=None
):
    """The user's CSV/TSV/JSONL files; `labels=None` means regression.
    `test`: a file with the same columns, scored once at the end."""
    from convbert_keras.data.tables import read_labelled_file

    regression = labels is None

    def read(path):
        x, y = read_labelled_file(path, text_columns, label_column, labels, file_format)
        return x, np.array(y, "float32" if regression else "int32")

    return FinetuneData(
        "classification",
        read(train),
        {"validation": read(validation)},
        1 if regression else len(labels),
        ("pearson", "spearman")
        if regression
        else ("accuracy", "f1")
        if len(labels) == 2
        else ("accuracy",),
        None if regression else [str(label) for label in labels],
        test=None if test is None else {"test": read(test)},
    )


def conll_data(train_sentences, validation_sentences, tags=None, test_sentences=None):
    """Word-tagged sentences (`read_conll`) for a token classifier;
    `test_sentences` are scored once at the end."""
    from convbert_keras.data.conll import tag_vocabulary

    tags = tags or tag_vocabulary(train_sentences + validation_sentences)
    ids = {tag: i for i, tag in enumerate(tags)}
    for _, sentence_tags in train_sentences:
        unknown = [t for t in sentence_tags if t not in ids]
        if unknown:
            raise ValueError(f"Tag {unknown[0]!r} is not one of the declared tags {tags}.")
    return FinetuneData(
        "token_classification",
        ([w for w, _ in train_sentences], [[ids[t] for t in s] for _, s in train_sentences]),
        {
            "validation": (
                [w for w, _ in validation_sentences],
                [s for _, s in validation_sentences],
            )
        },
        len(tags),
        ("f1", "precision", "recall"),
        tags,
        test=None
        if test_sentences is None
        else {"test": ([w for w, _ in test_sentences], [s for _, s in test_sentences])},
    )


def _sample(x, y, count, seed):
    """`count` examples drawn at random under `seed` (all when `None`):
    a cut of a list in file order would take a few movies or topics."""
    if count is None or count >= len(x):
        return x, y
    chosen = np.sort(np.random.default_rng(seed).permutation(len(x))[:count])
    return [x[i] for i in chosen], np.asarray(y)[chosen]


def named_data(name, data_dir=None, max_train_examples=None, max_eval_examples=None, seed=0):
    """Data by name: a GLUE task, `squad_v1`/`squad_v2`, or the built-in
    real data `rotten_tomatoes` and `wnut16`.

    `rotten_tomatoes` has a test split (movies of its own, never used to
    choose anything), and its `max_train_examples` are drawn at random
    under `seed`. GLUE and SQuAD keep their test labels private: their
    validation sets are where the best epoch is chosen and scores reported.
    """
    from convbert_keras.data.glue import GLUE_TASKS

    limits = dict(max_train_examples=max_train_examples, max_eval_examples=max_eval_examples)
    if name in GLUE_TASKS:
        return glue_data(name, data_dir, **limits)
    if name in ("squad_v1", "squad_v2"):
        return squad_data(name, data_dir, **limits)
    if name == "rotten_tomatoes":
        from convbert_keras.data import load_rotten_tomatoes_splits

        splits = load_rotten_tomatoes_splits()
        limits = {
            "train": max_train_examples,
            "validation": max_eval_examples,
            "test": max_eval_examples,
        }
        parts = {}
        for part, limit in limits.items():
            x, y = _sample(*splits[part], limit, seed)
            parts[part] = (x, np.array(y, "int32"))
        return FinetuneData(
            "classification",
            parts["train"],
            {"validation": parts["validation"]},
            2,
            ("accuracy", "f1"),
            ["rotten", "fresh"],
            test={"test": parts["test"]},
        )
    if name == "wnut16":
        from convbert_keras.data import load_wnut16

        train, validation, tags = load_wnut16()
        return conll_data(train[:max_train_examples], validation[:max_eval_examples], tags)
    raise ValueError(
        f"Unknown task {name!r}; expected a GLUE task ({', '.join(sorted(GLUE_TASKS))}) "
        f"or one of {', '.join(TASK_NAMES)}, or local files."
    )


def _build_task(data, preset, backbone, tokenizer, sequence_length, pooling="cls"):
    from convbert_keras.models.question_answerer import ConvBertQuestionAnswerer
    from convbert_keras.models.question_answerer_preprocessor import (
        ConvBertQuestionAnswererPreprocessor,
    )
    from convbert_keras.models.text_classifier import ConvBertTextClassifier
    from convbert_keras.models.text_classifier_preprocessor import (
        ConvBertTextClassifierPreprocessor,
    )
    from convbert_keras.models.token_classifier import ConvBertTokenClassifier
    from convbert_keras.models.token_classifier_preprocessor import (
        ConvBertTokenClassifierPreprocessor,
    )

    task_cls, preprocessor_cls, kwargs = {
        "classification": (
            ConvBertTextClassifier,
            ConvBertTextClassifierPreprocessor,
            {"num_classes": data.num_classes, "pooling": pooling},
        ),
        "token_classification": (
            ConvBertTokenClassifier,
            ConvBertTokenClassifierPreprocessor,
            {"num_classes": data.num_classes},
        ),
        "question_answering": (ConvBertQuestionAnswerer, ConvBertQuestionAnswererPreprocessor, {}),
    }[data.kind]
    preprocessor_kwargs = {"sequence_length": sequence_length}
    if data.kind == "question_answering":
        preprocessor_kwargs.update(
            doc_stride=max(1, sequence_length // 3), max_query_length=min(64, sequence_length // 4)
        )
    if preset is not None:
        preprocessor = preprocessor_cls.from_preset(preset, **preprocessor_kwargs)
        return task_cls.from_preset(preset, preprocessor=preprocessor, **kwargs)
    preprocessor = preprocessor_cls(tokenizer, **preprocessor_kwargs)
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
    import tensorflow as tf

    results = {}
    for name, examples in data.validation.items():
        if data.kind == "question_answering":
            questions, contexts, gold = examples
            answers = model.answer(
                questions, contexts, allow_no_answer=data.allow_no_answer, batch_size=batch_size
            )
            scores = official.squad_scores([a["text"] for a in answers], gold)
        elif data.kind == "token_classification":
            words, gold = examples
            predicted = model.predict_words(words, batch_size=batch_size)
            tags = data.label_names
            predicted = [
                [tags[i] for i in p] + ["O"] * (len(g) - len(p)) for p, g in zip(predicted, gold)
            ]
            scores = official.entity_f1(gold, predicted)
        else:
            if isinstance(examples, tf.data.Dataset):
                pairs = list(examples.batch(1024).as_numpy_iterator())
                x = (
                    tuple(np.concatenate([p[0][i] for p in pairs]) for i in range(len(pairs[0][0])))
                    if isinstance(pairs[0][0], tuple)
                    else np.concatenate([p[0] for p in pairs])
                )
                y = np.concatenate([p[1] for p in pairs])
            else:
                x, y = examples
            outputs = model.predict(x, batch_size=batch_size, verbose=0)
            predictions = outputs[:, 0] if data.num_classes == 1 else outputs.argmax(-1)
            scores = {name_: getattr(official, name_)(y, predictions) for name_ in data.metrics}
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
    if data.kind == "token_classification":
        x, y = tf.ragged.constant(x), tf.ragged.constant(y)
    return tf.data.Dataset.from_tensor_slices((x, y))


def _raw_batches(data, examples, batch_size):
    if data.kind == "token_classification":
        return examples.ragged_batch(batch_size)
    return examples.batch(batch_size)


def _window_batches(model, examples, batch_size):
    """Question answering: the windows of long contexts, preprocessed and
    re-batched to `batch_size`."""
    return model._window_dataset(examples.batch(batch_size), None, batch_size)


def training_batches(model, data, batch_size, seed, epochs, start_epoch=0, skip=0):
    """The preprocessed training batches of epochs `start_epoch` to
    `epochs - 1`, the first `skip` batches left out: each epoch the examples
    in an order of its own, drawn under `(seed, epoch)`, so that a resumed
    run sees the batches an uninterrupted one would."""
    import tensorflow as tf

    examples = _training_examples(data)
    count = _count(data.train)
    # Question answering re-batches its windows within each epoch; other
    # tasks batch raw examples per epoch and preprocess them in one map, so
    # the preprocessor is traced (and instantiated with its tokenizer's
    # kernels) once for the run rather than once per epoch.
    windows = data.kind == "question_answering"
    dataset = None
    for epoch in range(start_epoch, epochs):
        order = examples.shuffle(count, seed=seed * 1000 + epoch, reshuffle_each_iteration=False)
        if windows:
            batches = _window_batches(model, order, batch_size)
        else:
            batches = _raw_batches(data, order, batch_size)
        if epoch == start_epoch:
            batches = batches.skip(skip)
        dataset = batches if dataset is None else dataset.concatenate(batches)
    if not windows:
        dataset = dataset.map(model.preprocess_samples, num_parallel_calls=tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = True
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(options)


def _steps_per_epoch(model, data, batch_size, results):
    if data.kind != "question_answering":
        return math.ceil(_count(data.train) / batch_size)
    # A long context gives several windows: count them once per run.
    if "train_windows" not in results:
        rows = _window_batches(model, _training_examples(data), 256)
        results["train_windows"] = int(
            sum(int(keras.ops.shape(x["token_ids"])[0]) for x, *_ in rows)
        )
    return math.ceil(results["train_windows"] / batch_size)


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
        if step % self.steps_per_epoch == 0:
            self._end_epoch(step // self.steps_per_epoch, logs or {})
        elif step % self.checkpoint_every == 0:
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


def finetune(
    data,
    output_dir,
    preset=None,
    size=None,
    vocabulary=None,
    epochs=3,
    batch_size=32,
    learning_rate=1e-4,
    layer_decay=0.8,
    weight_decay=0.01,
    warmup_fraction=0.1,
    sequence_length=128,
    patience=None,
    seed=0,
    jit_compile=True,
    pooling="cls",
    reinitialize_layers=0,
    checkpoint_every=None,
    strategy=None,
    verbose=1,
):
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
        data: a `FinetuneData` (`named_data`, `glue_data`, `table_data`,
            `conll_data`, `squad_data`).
        output_dir: the run folder.
        preset: a preset directory to start from (pretrained or converted),
            or `None` with `size` to train from scratch.
        size: a published size name, a dict of `ConvBertBackbone`
            arguments or the path of a JSON file of them, when there is no
            preset (training from scratch).
        vocabulary: `vocab.txt` when there is no preset (default: the BERT
            uncased vocabulary).
        pooling: a text classifier's summary of the sequence, `"cls"` or
            `"mean"` (see `ConvBertTextClassifier`).
        reinitialize_layers: int. Encoder layers, from the top, given fresh
            initial weights before training
            (`ConvBertBackbone.reinitialize_top_layers`): 1 for a
            replaced-token-detection discriminator fine-tuned on few labels.
        checkpoint_every: int. Steps between checkpoints (default: one per
            epoch).
        strategy: a `tf.distribute` strategy (`convbert_keras.distribute.
            make_strategy`); `batch_size` is the global batch.
        Other arguments: the training settings above.

    Returns: the results dict (as written to `results.json`).
    """
    import tensorflow as tf

    from convbert_keras.data import fetch
    from convbert_keras.models.backbone import ConvBertBackbone
    from convbert_keras.models.configs import convbert_config
    from convbert_keras.models.tokenizer import ConvBertTokenizer

    if (preset is None) == (size is None):
        raise ValueError(
            "Pass exactly one of `preset` (a directory) or `size` (train from scratch)."
        )
    if preset is not None and not os.path.isfile(os.path.join(preset, "config.json")):
        raise ValueError(f"{preset} is not a preset directory (it has no config.json).")
    if checkpoint_every is not None and checkpoint_every < 1:
        raise ValueError(f"`checkpoint_every` must be positive. Received: {checkpoint_every}")
    strategy = strategy or tf.distribute.get_strategy()
    if batch_size % strategy.num_replicas_in_sync:
        raise ValueError(
            f"`batch_size` {batch_size} must divide evenly over "
            f"{strategy.num_replicas_in_sync} replicas."
        )
    train_count = _count(data.train)
    if train_count == 0:
        raise ValueError("The training set is empty.")
    os.makedirs(output_dir, exist_ok=True)
    if isinstance(size, str) and size.endswith(".json"):
        with open(size, encoding="utf-8") as f:
            size = json.load(f)
    run_config = {
        "task": {
            "kind": data.kind,
            "num_classes": data.num_classes,
            "train_examples": train_count,
            "train_sha256": _data_digest(data.train),
        },
        "preset": os.path.abspath(preset) if preset else None,
        "size": size,
        "vocabulary": _vocabulary_id(vocabulary),
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "layer_decay": layer_decay,
        "weight_decay": weight_decay,
        "warmup_fraction": warmup_fraction,
        "sequence_length": sequence_length,
        "patience": patience,
        "seed": seed,
        "pooling": pooling,
        "jit_compile": jit_compile,
        "replicas": strategy.num_replicas_in_sync,
    }
    if reinitialize_layers:
        # Recorded only when used: folders from before the setting still resume.
        run_config["reinitialize_layers"] = reinitialize_layers
    config_path = check_run_config(output_dir, run_config, "fine-tuning run")
    chief = is_chief(strategy)
    results_path = os.path.join(output_dir, "results.json")
    results = {"epochs": [], "best": None, "train_examples": train_count}
    if os.path.exists(results_path):
        with open(results_path, encoding="utf-8") as f:
            results = json.load(f)
    preset_dir = os.path.join(output_dir, "preset")
    if results.get("finished"):
        if verbose:
            print(f"{output_dir} is complete; nothing to train.")
        if data.test and "test" not in results and chief:
            results["test"] = evaluate_test(preset_dir, data, batch_size)
            write_json(results_path, results)
        return results

    keras.utils.set_random_seed(seed)
    with strategy.scope():
        backbone = tokenizer = None
        if preset is None:
            tokenizer = ConvBertTokenizer(vocabulary=vocabulary or fetch("bert_uncased_vocab"))
            kwargs = size if isinstance(size, dict) else convbert_config(size)
            backbone = ConvBertBackbone(**dict(kwargs, vocabulary_size=tokenizer.vocabulary_size()))
        model = _build_task(data, preset, backbone, tokenizer, sequence_length, pooling)
        model.backbone.reinitialize_top_layers(reinitialize_layers)
        if model.backbone.max_sequence_length < sequence_length:
            raise ValueError(
                f"`sequence_length` {sequence_length} exceeds the model's "
                f"{model.backbone.max_sequence_length} positions."
            )
        steps_per_epoch = _steps_per_epoch(model, data, batch_size, results)
        steps = epochs * steps_per_epoch
        schedule = WarmupLinearDecay(learning_rate, int(warmup_fraction * steps), steps)
        model.compile(
            optimizer=adamw(schedule, weight_decay, layer_decay, model.backbone.num_layers),
            jit_compile=jit_compile,
        )
        first = next(iter(training_batches(model, data, batch_size, seed, 1)))
        model(first[0])
        model.optimizer.build(model.trainable_variables)

    manager, latest = restore_training(model, output_dir, chief, max_to_keep=2)
    if chief:
        write_json(config_path, run_config)
    step = int(model.optimizer.iterations.numpy())
    if latest and verbose:
        print(f"Resuming from {latest} at step {step}.")
    # Epochs trained again after a kill replace their records.
    results["epochs"] = [r for r in results["epochs"] if r["epoch"] * steps_per_epoch <= step]
    writer = tf.summary.create_file_writer(os.path.join(output_dir, "logs")) if chief else None
    run = {
        "data": data,
        "results": results,
        "results_path": results_path,
        "chief": chief,
        "preset": preset_dir,
        "batch_size": batch_size,
        "patience": patience,
        "writer": writer,
    }
    progress = _FinetuneProgress(
        run,
        steps_per_epoch,
        checkpoint_every or steps_per_epoch,
        manager,
        {v.path: np.array(v) for v in model.metrics_variables} if step % steps_per_epoch else {},
    )
    start = time.time()
    if step < steps and not _stopped_early(results, patience, data.metrics[0]):
        dataset = training_batches(
            model, data, batch_size, seed, epochs, step // steps_per_epoch, step % steps_per_epoch
        )
        # The batches are preprocessed already: keras.Model.fit, not the
        # keras-hub task's, which would run the preprocessor again.
        keras.Model.fit(
            model,
            dataset,
            epochs=1,
            steps_per_epoch=steps - step,
            shuffle=False,
            callbacks=[progress],
            verbose=verbose,
        )
    results["train_seconds"] = results.get("train_seconds", 0.0) + time.time() - start
    if writer is not None:
        writer.close()
    if not chief:
        shutil.rmtree(manager.directory, ignore_errors=True)
        return results
    if data.test:
        results["test"] = evaluate_test(preset_dir, data, batch_size)
    results["finished"] = True
    write_json(results_path, results)
    return results


def evaluate_test(preset, data, batch_size=64):
    """Official metrics of the chosen model (the task preset written by
    `finetune`) on `data.test`, which nothing was chosen on."""
    from convbert_keras.export.tf_serving import load_task

    return evaluate_task(load_task(preset), data._replace(validation=data.test), batch_size)
