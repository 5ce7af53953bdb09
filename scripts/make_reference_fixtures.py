"""Regenerates tests/fixtures from transformers' PyTorch ConvBERT.

Needs the `reference` extra (torch, transformers):
    .venv/bin/python scripts/make_reference_fixtures.py
"""

import argparse
import os

from convbert_keras.lab.reference import write_reference_checkpoint

# Two tiny shapes that between them cover every code path of the converter:
# the embedding bottleneck (E < H) with dense FFNs, and grouped FFNs.
FIXTURES = {
    "tiny": dict(
        vocabulary_size=64,
        num_layers=2,
        num_heads=4,
        hidden_dim=32,
        embedding_dim=16,
        intermediate_dim=64,
        num_groups=1,
        conv_kernel_size=9,
        max_sequence_length=64,
    ),
    "tiny_grouped": dict(
        vocabulary_size=64,
        num_layers=2,
        num_heads=4,
        hidden_dim=32,
        embedding_dim=32,
        intermediate_dim=64,
        num_groups=2,
        conv_kernel_size=5,
        max_sequence_length=64,
    ),
}

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = (
    "the a an is was of to and in it that movie film good bad great "
    "plot actor story funny boring love hate hello world"
).split()


# Task heads, on the "tiny" shape: (task, num_labels).
TASK_FIXTURES = {
    "tiny_text_classifier": ("text_classifier", 3),
    "tiny_token_classifier": ("token_classifier", 4),
    "tiny_masked_lm": ("masked_lm", 2),
    "tiny_question_answerer": ("question_answerer", 2),
}


def fixture_vocabulary(size):
    pieces = SPECIAL_TOKENS + WORDS + ["##s", "##ing", "##ed", ".", ",", "!", "?"]
    pieces += [f"[unused{i}]" for i in range(size - len(pieces))]
    return pieces[:size]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--output", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures")
    )
    args = parser.parse_args()
    for seed, (name, kwargs) in enumerate(sorted(FIXTURES.items())):
        directory = os.path.join(args.output, name)
        os.makedirs(directory, exist_ok=True)
        write_reference_checkpoint(
            kwargs,
            directory,
            seed=seed,
            vocabulary=fixture_vocabulary(kwargs["vocabulary_size"]),
        )
        print(f"wrote {directory}")
    for seed, (name, (task, num_labels)) in enumerate(sorted(TASK_FIXTURES.items()), start=10):
        directory = os.path.join(args.output, name)
        os.makedirs(directory, exist_ok=True)
        write_reference_checkpoint(
            FIXTURES["tiny"],
            directory,
            seed=seed,
            task=task,
            num_labels=num_labels,
            vocabulary=fixture_vocabulary(FIXTURES["tiny"]["vocabulary_size"]),
            torch_bin=False,
        )
        print(f"wrote {directory}")


if __name__ == "__main__":
    main()
