"""Entity-level precision, recall and F1 over BIO tags (CoNLL's conlleval)."""


def _split(tag):
    if tag == "O" or tag is None:
        return "O", None
    prefix, _, kind = tag.partition("-")
    if prefix not in ("B", "I") or not kind:
        raise ValueError(f"{tag!r} is not a BIO tag (O, B-TYPE or I-TYPE).")
    return prefix, kind


def entity_spans(tags):
    """`(type, start, end)` (end exclusive) of the entities in one sentence.

    conlleval's chunking: an entity starts at `B-X`, or at `I-X` after `O`
    or after an entity of another type; it continues over `I-X`.
    """
    spans = []
    start, kind = None, None
    for position, tag in enumerate(list(tags) + ["O"]):
        prefix, tag_kind = _split(tag)
        continues = prefix == "I" and tag_kind == kind
        if start is not None and not continues:
            spans.append((kind, start, position))
            start, kind = None, None
        if prefix != "O" and not continues:
            start, kind = position, tag_kind
    return spans


def entity_f1(gold, predicted):
    """Micro precision, recall and F1 of exactly matching entities.

    `gold` and `predicted` are lists of sentences, each a list of BIO tags
    of the same length. Returns a dict with `precision`, `recall`, `f1`
    (0 where undefined) and the counts.
    """
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted.")
    correct = found = expected = 0
    for index, (gold_tags, predicted_tags) in enumerate(zip(gold, predicted)):
        if len(gold_tags) != len(predicted_tags):
            raise ValueError(
                f"Sentence {index} has {len(gold_tags)} gold tags but "
                f"{len(predicted_tags)} predicted."
            )
        gold_spans = set(entity_spans(gold_tags))
        predicted_spans = set(entity_spans(predicted_tags))
        correct += len(gold_spans & predicted_spans)
        found += len(predicted_spans)
        expected += len(gold_spans)
    precision = correct / found if found else 0.0
    recall = correct / expected if expected else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "correct": correct,
        "predicted": found,
        "gold": expected,
    }
