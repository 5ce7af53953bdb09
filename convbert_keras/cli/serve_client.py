"""Queries an exported model on a TF Serving model server, over REST or gRPC.

    .venv/bin/python scripts/serve_client.py --model convbert_sentiment \\
        "A gripping film." "Dull and long."
    .venv/bin/python scripts/serve_client.py --grpc localhost:8500 --model convbert_qa \\
        --input question="Who directed it?" --input context="It was directed by Ang Lee."

Positional texts go to the signature's `text` input (`--text-input` names
another); `--input NAME=VALUE` adds one value to input NAME (repeat it for a
batch, and for signatures with several inputs). Prints the outputs as JSON,
one list per output, in batch order.
"""

import argparse
import json
import sys


def _inputs(parser, args):
    inputs = {}
    if args.texts:
        inputs[args.text_input] = list(args.texts)
    for item in args.input or ():
        name, separator, value = item.partition("=")
        if not separator or not name:
            parser.error(f"--input takes NAME=VALUE; got {item!r}")
        inputs.setdefault(name, []).append(value)
    if not inputs:
        parser.error("give texts to send, or --input NAME=VALUE")
    sizes = {name: len(values) for name, values in inputs.items()}
    if len(set(sizes.values())) > 1:
        parser.error(f"every input needs one value per example; got {sizes}")
    return inputs


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("texts", nargs="*", help="texts for the signature's text input")
    parser.add_argument("--model", required=True, help="model name in TF Serving")
    server = parser.add_mutually_exclusive_group()
    server.add_argument(
        "--rest", default="http://localhost:8501", help="REST address (default: %(default)s)"
    )
    server.add_argument("--grpc", help="gRPC address, e.g. localhost:8500 (instead of REST)")
    parser.add_argument("--signature", default="serving_default")
    parser.add_argument("--version", type=int, help="default: the latest the server has")
    parser.add_argument("--text-input", default="text", help="input the positional texts go to")
    parser.add_argument("--input", action="append", metavar="NAME=VALUE")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds")
    args = parser.parse_args(argv)
    inputs = _inputs(parser, args)

    from convbert_keras.export.client import ServingError
    from convbert_keras.export.client import predict_grpc
    from convbert_keras.export.client import predict_rest

    try:
        if args.grpc:
            outputs = predict_grpc(
                args.grpc, args.model, inputs, args.signature, args.version, args.timeout
            )
        else:
            outputs = predict_rest(
                args.rest, args.model, inputs, args.signature, args.version, args.timeout
            )
    except ServingError as error:
        parser.exit(1, f"error: {error}\n")
    json.dump({name: value.tolist() for name, value in sorted(outputs.items())}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
