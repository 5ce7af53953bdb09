"""BERT's tokenization rules in plain Python: the truth for the tokenizer tests.

Written from the original BERT's `tokenization.py` (google-research/bert,
which ConvBERT's own code uses) on Python's `unicodedata`, character by
character and independent of `convbert_keras`: clean (drop NUL, U+FFFD and
every `C*` character but tab, newline and return; white space, which is those
three and category Zs, becomes a space), put spaces around CJK characters,
split on white space as `str.split` does (which adds U+2028 and U+2029),
lowercase with `str.lower` (so a final capital sigma becomes `ς`), NFD and
drop combining marks (Mn), split off punctuation, then WordPiece. The one
change: words over 100 characters are unknown (transformers' limit; the
original's is 200).
"""

import unicodedata

CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)
MAX_CHARS_PER_WORD = 100


def is_cjk(char):
    return any(lo <= ord(char) <= hi for lo, hi in CJK_RANGES)


def is_whitespace(char):
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def is_control(char):
    return char not in "\t\n\r" and unicodedata.category(char).startswith("C")


def is_punctuation(char):
    code = ord(char)
    ascii_symbol = 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126
    return ascii_symbol or unicodedata.category(char).startswith("P")


def basic_tokenize(text):
    """BERT's BasicTokenizer (lowercasing, accents stripped): a list of words."""
    kept = []
    for char in text:
        if char in "\x00\ufffd" or is_control(char):
            continue
        kept.append(" " if is_whitespace(char) else char)
    spaced = "".join(f" {c} " if is_cjk(c) else c for c in kept)
    words = []
    for token in spaced.split():
        token = unicodedata.normalize("NFD", token.lower())
        word = ""
        for char in token:
            if unicodedata.category(char) == "Mn":
                continue
            if is_punctuation(char):
                words += [word, char] if word else [char]
                word = ""
            else:
                word += char
        if word:
            words.append(word)
    return words


def wordpiece(word, vocabulary):
    """Greedy longest-match-first pieces of one word, or `["[UNK]"]`."""
    if len(word) > MAX_CHARS_PER_WORD:
        return ["[UNK]"]
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:
            piece = ("##" if start else "") + word[start:end]
            if piece in vocabulary:
                break
            end -= 1
        if end == start:
            return ["[UNK]"]
        pieces.append(piece)
        start = end
    return pieces


def token_ids(text, vocabulary):
    """Ids of `text`'s pieces; `vocabulary` maps piece to id."""
    return [vocabulary[p] for w in basic_tokenize(text) for p in wordpiece(w, vocabulary)]
