"""Exports a fine-tuned task preset for TensorFlow Serving.

    .venv/bin/python scripts/export.py --preset runs/rt/preset --name convbert_sentiment \\
        --labels rotten fresh

writes saved_models/<name>/<next version>/ (raw-string signatures, warmup
requests) and saved_models/models.config. Serve it with the official image:

    docker run -p 8501:8501 -p 8500:8500 -v "$PWD/saved_models:/models" \\
        tensorflow/serving --model_config_file=/models/models.config
"""

import argparse
import sys

from convbert_keras.cli import freeze_start_up_objects


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", required=True, help="a fine-tuned task preset directory")
    parser.add_argument("--name", required=True, help="model name in TF Serving")
    parser.add_argument("--base-dir", default="saved_models")
    parser.add_argument("--version", type=int, help="default: one above the highest present")
    parser.add_argument("--labels", nargs="+", help="class or tag names, in id order")
    parser.add_argument("--max-answer-length", type=int, default=30, help="question answering")
    parser.add_argument(
        "--allow-no-answer", action="store_true", help="question answering (SQuAD 2.0)"
    )
    args = parser.parse_args(argv)

    from convbert_keras.export.tf_serving import export_for_tf_serving
    from convbert_keras.models.convbert_task import load_task

    def log(line):
        # stdout holds only the version directory, for scripts to read.
        print(line, file=sys.stderr, flush=True)

    freeze_start_up_objects()
    try:
        log(f"loading {args.preset}")
        path = export_for_tf_serving(
            load_task(args.preset),
            args.name,
            base_dir=args.base_dir,
            version=args.version,
            label_names=args.labels,
            max_answer_length=args.max_answer_length,
            allow_no_answer=args.allow_no_answer,
            log=log,
        )
    except (ValueError, OSError) as error:
        parser.exit(2, f"error: {error}\n")
    print(path)
    print(f"models.config: {args.base_dir}/models.config", file=sys.stderr)


if __name__ == "__main__":
    main()
