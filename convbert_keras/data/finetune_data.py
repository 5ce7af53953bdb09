"""Fine-tuning data: named tasks (GLUE, SQuAD, the built-in real data) and
the user's files, each as a `FinetuneData` that `finetune` trains on."""

import collections

import numpy as np

from convbert_keras.data.conll import load_wnut16
from convbert_keras.data.conll import tag_vocabulary
from convbert_keras.data.glue import GLUE_TASKS
from convbert_keras.data.glue import glue_task
from convbert_keras.data.glue import load_glue
from convbert_keras.data.rotten_tomatoes import load_rotten_tomatoes_splits
from convbert_keras.data.squad import SQUAD_VERSIONS
from convbert_keras.data.squad import load_squad
from convbert_keras.data.tables import read_labelled_file

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

TASK_NAMES = ("rotten_tomatoes", "wnut16", *SQUAD_VERSIONS)


def _take(dataset, limit):
    return dataset if limit is None else dataset.take(limit)


def glue_data(name, data_dir=None, max_train_examples=None, max_eval_examples=None):
    """A GLUE task from TFDS as `FinetuneData`."""
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
    limits = dict(max_train_examples=max_train_examples, max_eval_examples=max_eval_examples)
    if name in GLUE_TASKS:
        return glue_data(name, data_dir, **limits)
    if name in SQUAD_VERSIONS:
        return squad_data(name, data_dir, **limits)
    if name == "rotten_tomatoes":
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
        train, validation, tags = load_wnut16()
        return conll_data(train[:max_train_examples], validation[:max_eval_examples], tags)
    raise ValueError(
        f"Unknown task {name!r}; expected a GLUE task ({', '.join(sorted(GLUE_TASKS))}) "
        f"or one of {', '.join(TASK_NAMES)}, or local files."
    )
