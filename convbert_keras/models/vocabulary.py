"""Learning a WordPiece vocabulary from a text corpus."""

from convbert_keras.models.tokenizer import normalize_text

# [PAD] first: ConvBERT pads with id 0.
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def build_vocabulary(
    texts=None, files=None, vocabulary_size=30522, output=None, lowercase=True, strip_accents=None
):
    """Learns a WordPiece vocabulary for `ConvBertTokenizer`.

    The text is normalised exactly as the tokenizer will see it (BERT's
    cleaning, lowercasing and accent stripping), split into words, and
    tf-text's BERT vocabulary learner picks word pieces up to
    `vocabulary_size`, after the special tokens `[PAD]` (id 0), `[UNK]`,
    `[CLS]`, `[SEP]` and `[MASK]`.

    Args:
        texts: an iterable of strings.
        files: paths of UTF-8 text files, one or more documents per line
            (instead of, or as well as, `texts`).
        vocabulary_size: int. Maximum number of entries.
        output: if given, the path of the `vocab.txt` to write.
        lowercase: as for `ConvBertTokenizer`.
        strip_accents: as for `ConvBertTokenizer`.

    Returns: the vocabulary, a list of strings.
    """
    import tensorflow as tf
    from keras_hub.tokenizers import compute_word_piece_vocabulary

    if strip_accents is None:
        strip_accents = lowercase
    if vocabulary_size <= len(SPECIAL_TOKENS):
        raise ValueError(
            f"`vocabulary_size` must exceed the {len(SPECIAL_TOKENS)} special tokens. "
            f"Received: {vocabulary_size}"
        )
    parts = []
    if texts is not None:
        parts.append(tf.data.Dataset.from_tensor_slices(tf.constant(list(texts), tf.string)))
    if files:
        parts.append(tf.data.TextLineDataset([str(f) for f in files]))
    if not parts:
        raise ValueError("Pass `texts` or `files` to learn a vocabulary from.")
    data = parts[0] if len(parts) == 1 else parts[0].concatenate(parts[1])
    data = data.batch(1024).map(lambda t: normalize_text(t, lowercase, strip_accents))
    if not any(tf.reduce_any(tf.strings.length(tf.strings.strip(batch)) > 0) for batch in data):
        raise ValueError("The corpus has no text to learn a vocabulary from.")
    vocabulary = compute_word_piece_vocabulary(
        data,
        vocabulary_size,
        lowercase=False,
        strip_accents=False,
        reserved_tokens=list(SPECIAL_TOKENS),
    )
    if output is not None:
        with open(output, "w", encoding="utf-8") as f:
            f.write("\n".join(vocabulary) + "\n")
    return vocabulary
