"""The user's own labelled files: CSV, TSV and JSON Lines."""

import csv
import json
import os

FORMATS = ("csv", "tsv", "jsonl")


def _format_of(path, file_format):
    if file_format:
        if file_format not in FORMATS:
            raise ValueError(f"Unknown format {file_format!r}; expected one of {FORMATS}.")
        return file_format
    extension = os.path.splitext(str(path))[1].lower().lstrip(".")
    if extension == "json":
        extension = "jsonl"
    if extension not in FORMATS:
        raise ValueError(
            f"Cannot tell the format of {path} from its extension; pass one of {FORMATS}."
        )
    return extension


def _rows(path, file_format):
    if file_format == "jsonl":
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    raise ValueError(
                        f"{path}, line {number}: not valid JSON ({error.msg})."
                    ) from None
                if not isinstance(row, dict):
                    raise ValueError(f"{path}, line {number}: expected a JSON object per line.")
                yield number, row
        return
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="," if file_format == "csv" else "\t")
        for row in reader:
            yield reader.line_num, row


def read_labelled_file(path, text_columns, label_column, labels=None, file_format=None):
    """Reads `(texts, labels)` from a CSV, TSV or JSONL file.

    Args:
        path: the file.
        text_columns: one column name (single texts) or two (pairs).
        label_column: the column of the labels.
        labels: the declared label values (class names or numbers), mapped
            to ids in this order; `None` for regression (float labels).
        file_format: `"csv"`, `"tsv"` or `"jsonl"` (default: from the
            extension).

    Returns: `(texts, labels)`: `texts` a list of strings, or a pair of
    lists; `labels` a list of ints (class ids) or floats.
    Raises `ValueError` naming the file and line of a missing column, a
    label outside `labels` or a malformed line, and for an empty file.
    """
    file_format = _format_of(path, file_format)
    text_columns = [text_columns] if isinstance(text_columns, str) else list(text_columns)
    if not 1 <= len(text_columns) <= 2:
        raise ValueError(f"Give one or two text columns. Received: {text_columns}")
    ids = None if labels is None else {str(label): i for i, label in enumerate(labels)}
    columns = text_columns + [label_column]
    texts, targets = [[] for _ in text_columns], []
    for number, row in _rows(path, file_format):
        missing = [c for c in columns if c not in row or row[c] is None]
        if missing:
            raise ValueError(
                f"{path}, line {number}: no column {', '.join(map(repr, missing))}; "
                f"the row has {sorted(row)}."
            )
        for values, column in zip(texts, text_columns):
            values.append(str(row[column]))
        value = row[label_column]
        if ids is None:
            try:
                targets.append(float(value))
            except (TypeError, ValueError):
                raise ValueError(
                    f"{path}, line {number}: label {value!r} is not a number."
                ) from None
        else:
            key = str(value)
            if key not in ids:
                raise ValueError(
                    f"{path}, line {number}: label {value!r} is not one of the declared "
                    f"labels {list(ids)}."
                )
            targets.append(ids[key])
    if not targets:
        raise ValueError(f"{path} has no examples.")
    return (texts[0] if len(texts) == 1 else tuple(texts)), targets
