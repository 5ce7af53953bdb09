"""CoNLL-style tagged text: one `word ... tag` line per token, blank lines
between sentences."""

import zlib

from convbert_keras.data.package_data import fetch


def read_conll(path, encoding="utf-8"):
    """Reads `(words, tags)` sentences from a CoNLL-style file.

    Each token line holds whitespace-separated columns: the word first, the
    tag last (columns between, such as POS tags, are ignored). Blank or
    whitespace-only lines end a sentence; `-DOCSTART-` lines are skipped.
    Raises `ValueError` naming the line of a token without a tag, and for a
    file with no tokens.
    """
    sentences, words, tags = [], [], []
    with open(path, encoding=encoding) as f:
        for number, line in enumerate(f, start=1):
            columns = line.split()
            if not columns or columns[0] == "-DOCSTART-":
                if words:
                    sentences.append((words, tags))
                    words, tags = [], []
                continue
            if len(columns) < 2:
                raise ValueError(
                    f"{path}, line {number}: {line.strip()!r} has no tag; expected "
                    "'word tag' (whitespace separated) or a blank line between sentences."
                )
            words.append(columns[0])
            tags.append(columns[-1])
    if words:
        sentences.append((words, tags))
    if not sentences:
        raise ValueError(f"{path} holds no tagged tokens.")
    return sentences


def tag_vocabulary(sentences):
    """Sorted tag names with `O` first (so that id 0 is "outside")."""
    tags = {tag for _, sentence_tags in sentences for tag in sentence_tags}
    return sorted(tags, key=lambda tag: (tag != "O", tag))


def load_wnut16(validation_fraction=0.2, cache_dir=None):
    """The WNUT-2016 tweets (2,394 sentences, BIO tags of 10 entity types).

    Returns `(train, validation, tags)`: lists of `(words, tags)` split by
    a stable hash of each sentence, and the tag vocabulary.
    """
    if not 0 < validation_fraction < 1:
        raise ValueError(
            f"`validation_fraction` must be in (0, 1). Received: {validation_fraction}"
        )
    sentences = read_conll(fetch("wnut16", cache_dir))
    train, validation = [], []
    for words, tags in sentences:
        bucket = zlib.crc32(" ".join(words).encode("utf-8")) % 1000
        (validation if bucket < validation_fraction * 1000 else train).append((words, tags))
    return train, validation, tag_vocabulary(sentences)
