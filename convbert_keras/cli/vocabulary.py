"""Learns a WordPiece vocab.txt for ConvBertTokenizer from text files.

.venv/bin/python scripts/build_vocabulary.py corpus.txt --size 30522 --output vocab.txt
"""

import argparse
import sys

from convbert_keras.models.vocabulary import build_vocabulary


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("files", nargs="+", help="UTF-8 text files, one or more documents per line")
    parser.add_argument("--size", type=int, default=30522, help="maximum vocabulary size")
    parser.add_argument("--output", required=True, help="path of the vocab.txt to write")
    parser.add_argument("--cased", action="store_true", help="keep case and accents")
    args = parser.parse_args(argv)
    try:
        vocabulary = build_vocabulary(
            files=args.files,
            vocabulary_size=args.size,
            output=args.output,
            lowercase=not args.cased,
        )
    except (ValueError, OSError) as error:
        parser.exit(2, f"error: {error}\n")
    print(f"wrote {len(vocabulary)} entries to {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
