"""Text corpora to packed, fixed-length pretraining sequences in tf.data."""

import codecs
import collections
import os
import warnings

from convbert_keras.data.options import pipeline_options

InvalidUtf8 = collections.namedtuple(
    "InvalidUtf8", ["invalid_sequences", "invalid_bytes", "first_offset"]
)


def count_invalid_utf8(path, chunk_size=1 << 20):
    """Counts what is not valid UTF-8 in a file, reading it in chunks.

    Returns an `InvalidUtf8`: the number of invalid sequences (each one
    U+FFFD when decoded with `errors="replace"`, as the corpus readers and
    the tokenizer do), the bytes they span, and the byte offset of the
    first (`None` in a valid file).
    """
    sequences = invalid = 0
    first = None
    offset = 0  # in the file, of `pending`'s first byte
    pending = b""
    with open(path, "rb") as f:
        while True:
            chunk = f.read(chunk_size)
            final = not chunk
            data = memoryview(pending + chunk)
            position = 0
            while True:
                try:
                    # Not final: a sequence cut by the chunk's end is left
                    # unconsumed, and decoded with the next chunk.
                    _, consumed = codecs.utf_8_decode(data[position:], "strict", final)
                except UnicodeDecodeError as error:
                    sequences += 1
                    invalid += error.end - error.start
                    if first is None:
                        first = offset + position + error.start
                    position += error.end
                else:
                    position += consumed
                    break
            if final:
                return InvalidUtf8(sequences, invalid, first)
            pending = bytes(data[position:])
            offset += position


def describe_text_files(paths, blank_line_separated=False):
    """The description of a text-file corpus that `pretrain` saves with its
    run (`corpus=`) and checks on resume.

    Each file's absolute path and size and the reading mode; and, for the
    files that hold invalid UTF-8, their `count_invalid_utf8` counts under
    `"invalid_utf8"` (left out when every file is valid, so a description
    is unchanged for valid corpora). Warns for each such file, with its
    counts: the tokenizer drops those bytes.
    """
    paths = [os.path.abspath(p) for p in _as_paths(paths)]
    description = {
        "files": [[path, os.path.getsize(path)] for path in paths],
        "blank_line_separated": blank_line_separated,
    }
    invalid = {}
    for path in paths:
        counts = count_invalid_utf8(path)
        if counts.invalid_sequences:
            warnings.warn(
                f"{path}: {counts.invalid_sequences} invalid UTF-8 sequence(s) "
                f"({counts.invalid_bytes} bytes) replaced by U+FFFD, which the "
                f"tokenizer drops; the first at byte {counts.first_offset}. "
                "Re-encode the file as UTF-8 if it uses another encoding.",
                stacklevel=2,
            )
            invalid[path] = counts._asdict()
    if invalid:
        description["invalid_utf8"] = invalid
    return description


def _as_paths(paths):
    paths = [os.fspath(p) for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths)]
    if not paths:
        raise ValueError("No corpus files given.")
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise ValueError(f"Corpus file(s) not found: {', '.join(missing)}")
    return paths


def _read_blank_line_documents(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = []
        for line in f:
            if line.strip():
                lines.append(line.strip())
            elif lines:
                yield " ".join(lines)
                lines = []
        if lines:
            yield " ".join(lines)


def text_file_documents(paths, blank_line_separated=False):
    """A `tf.data.Dataset` of documents (strings) from UTF-8 text files.

    One document per line, or, with `blank_line_separated`, documents of
    consecutive lines separated by blank lines. Raises `ValueError` for a
    missing file or an empty list. The tokenizer drops bytes that are not
    valid UTF-8 (as U+FFFD); `describe_text_files` counts them.
    """
    import tensorflow as tf

    paths = _as_paths(paths)
    if not blank_line_separated:
        return tf.data.TextLineDataset(paths)

    def documents():
        for path in paths:
            yield from _read_blank_line_documents(path)

    return tf.data.Dataset.from_generator(documents, output_signature=tf.TensorSpec((), tf.string))


def tfds_documents(name, split="train", text_key="text", data_dir=None):
    """Documents from a TensorFlow Datasets text dataset (`text_key` field)."""
    import tensorflow_datasets as tfds

    dataset = tfds.load(name, split=split, data_dir=data_dir, shuffle_files=False)
    if text_key not in dataset.element_spec:
        raise ValueError(
            f"TFDS dataset {name!r} has no field {text_key!r}; its fields are "
            f"{sorted(dataset.element_spec)}. Pass the text field as `text_key`."
        )
    return dataset.map(lambda example: example[text_key])


def pack_sentences(documents, tokenizer, sequence_length):
    """Documents to `[CLS] sentences... [SEP]` token ids, unpadded.

    Documents are split into sentences (after `.`, `!` or `?` and white
    space) and tokenized; whole sentences are packed, in order, until the
    next one would not fit in `sequence_length`; a sentence longer than a
    sequence is cut. Sequences may run across documents.
    """
    import tensorflow as tf

    room = sequence_length - 2
    if room < 1:
        raise ValueError(f"`sequence_length` must be at least 3. Received: {sequence_length}")

    def sentences(document):
        document = tf.strings.regex_replace(document, r"([.!?])\s+", "\\1\n")
        return tf.strings.split(document, "\n")

    def tokenize(batch):
        ids = tokenizer(batch)[:, :room]
        return ids.to_tensor(), ids.row_lengths()

    tokens = (
        documents.map(sentences)
        .unbatch()
        .filter(lambda s: tf.strings.length(tf.strings.strip(s)) > 0)
        .batch(256)
        .map(tokenize)
        .unbatch()
        .filter(lambda ids, length: length > 0)
        .map(lambda ids, length: ids[:length])
    )
    # A sentinel longer than any sentence flushes the last sequence.
    sentinel = tf.data.Dataset.from_tensors(
        tf.fill([room + 1], tf.constant(-1, tokens.element_spec.dtype))
    )

    def pack(buffer, sentence):
        flush = (tf.size(buffer) > 0) & (tf.size(buffer) + tf.size(sentence) > room)
        buffer_after = tf.cond(flush, lambda: sentence, lambda: tf.concat([buffer, sentence], 0))
        return buffer_after, (flush, buffer)

    empty = tf.zeros([0], tokens.element_spec.dtype)
    packed = (
        tokens.concatenate(sentinel)
        .scan(empty, pack)
        .filter(lambda flush, ids: flush)
        .map(lambda flush, ids: ids)
    )
    cls = tf.constant([tokenizer.cls_token_id], tokens.element_spec.dtype)
    sep = tf.constant([tokenizer.sep_token_id], tokens.element_spec.dtype)
    return packed.map(lambda ids: tf.concat([cls, ids, sep], 0))


def pretraining_dataset(
    documents,
    tokenizer,
    sequence_length,
    batch_size,
    seed=0,
    shuffle_buffer=10000,
    input_context=None,
    skip_batches=0,
    repeat=True,
):
    """Batches of packed sequences for `ConvBertPretrainer`.

    `documents` is a `tf.data.Dataset` of strings (`text_file_documents`,
    `tfds_documents`). Documents and sequences are shuffled under `seed`
    (the same order on every run), sentences packed (`pack_sentences`),
    padded to `sequence_length` and cut into global batches of
    `batch_size`, of which the first `skip_batches` are skipped (a resumed
    run continues where it stopped).

    Under a strategy, pass the `tf.distribute.InputContext` of
    `distribute_datasets_from_function`: this input pipeline then yields,
    in replica order, its replicas' rows of each global batch (replica r
    of the step gets rows `[r * b, (r + 1) * b)`, `b = batch_size /
    replicas`). Every replica trains on the rows one device would, so any
    number of workers and devices gives the same run; each worker reads
    and tokenizes the whole corpus for that.

    Returns: a dataset of `{"token_ids", "segment_ids", "padding_mask"}`,
    each `(rows, sequence_length)` int32; endless with `repeat`.
    """
    import tensorflow as tf

    documents = documents.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    sequences = pack_sentences(documents, tokenizer, sequence_length)
    sequences = sequences.shuffle(shuffle_buffer, seed=seed + 1, reshuffle_each_iteration=True)
    if repeat:
        sequences = sequences.repeat()

    def pad(ids):
        ids = tf.cast(ids, "int32")
        length = tf.size(ids)
        padding = [[0, sequence_length - length]]
        return {
            "token_ids": tf.ensure_shape(
                tf.pad(ids, padding, constant_values=tokenizer.pad_token_id), [sequence_length]
            ),
            "segment_ids": tf.zeros([sequence_length], "int32"),
            "padding_mask": tf.ensure_shape(
                tf.pad(tf.ones([length], "int32"), padding), [sequence_length]
            ),
        }

    batches = (
        sequences.map(pad, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(batch_size, drop_remainder=True)
        .skip(skip_batches)
    )
    if input_context is not None and input_context.num_replicas_in_sync > 1:
        rows = input_context.get_per_replica_batch_size(batch_size)
        local = input_context.num_replicas_in_sync // input_context.num_input_pipelines
        start = input_context.input_pipeline_id * local * rows
        batches = batches.map(
            lambda batch: {k: v[start : start + local * rows] for k, v in batch.items()}
        )
        if local > 1:
            batches = batches.unbatch().batch(rows, drop_remainder=True)
    return batches.prefetch(tf.data.AUTOTUNE).with_options(pipeline_options())
