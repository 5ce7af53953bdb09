"""Does pretraining pay? Fine-tuned test accuracy with few labels: pretrained
models beside the same model trained from scratch and a bag-of-words
baseline, over seeds, on the Rotten Tomatoes snippets.

Every run lives in its own folder under `output_dir` and is resumed (or, when
finished, reused) by the same call, so a killed comparison loses nothing.

The classifiers read the mean of the token states (`pooling="mean"`): after a
short pretraining the `[CLS]` state carries little (replaced-token detection
asks nothing of it but "not replaced"), and in our runs the mean was as good as
`[CLS]` or better for every arm, from scratch included.
"""

import json
import os

import numpy as np

from convbert_keras.files import write_json

# The model compared: 2 layers of hidden 128 (embeddings 64), length 64,
# small enough to pretrain for thousands of steps on two CPU cores.
COMPARISON_CONFIG = dict(
    num_layers=2,
    num_heads=4,
    hidden_dim=128,
    embedding_dim=64,
    intermediate_dim=512,
    max_sequence_length=64,
)

# Pretrained arms: backbone overrides, the pretraining objective, and the
# encoder layers re-initialised (from the top) before fine-tuning. The
# `_reinit` arms fine-tune the pretraining run of the arm without the suffix
# (`pretraining_arm`), so comparing the two costs no second pretraining.
PRETRAINED_ARMS = {
    "convbert_rtd": ({"conv_type": "span"}, "rtd", 0),
    "convbert_rtd_reinit": ({"conv_type": "span"}, "rtd", 1),
    "bert_rtd": ({"conv_type": "none"}, "rtd", 0),
    "bert_rtd_reinit": ({"conv_type": "none"}, "rtd", 1),
    "convbert_mlm": ({"conv_type": "span"}, "mlm", 0),
}
ARMS = ("scratch", *PRETRAINED_ARMS, "bag_of_words")


# Validation snippets whose token states measure a pretrained model's spread.
SPREAD_TEXTS = 256


def pretraining_arm(arm):
    """The arm whose folder holds `arm`'s pretraining run."""
    return arm.removesuffix("_reinit")


def comparison_tokenizer(output_dir, corpus, vocabulary_size=8000):
    """A tokenizer with a word-piece vocabulary learnt from `corpus`,
    kept in `<output_dir>/vocab.txt` (learnt once, reused after).

    The snippets use a few thousand pieces of BERT's 30,522; a vocabulary
    of their own makes the generator's softmax, the largest matrix
    product of a pretraining step at this width, about 9 times smaller
    (pretraining runs 3 times faster) and gives the same text fewer
    unseen pieces. The learner stops short of `vocabulary_size` on a
    small corpus (3,326 pieces on the training snippets).
    """
    from convbert_keras.models.tokenizer import ConvBertTokenizer
    from convbert_keras.models.vocabulary import build_vocabulary

    path = os.path.join(output_dir, "vocab.txt")
    if not os.path.isfile(path):
        os.makedirs(output_dir, exist_ok=True)
        build_vocabulary(corpus, vocabulary_size=vocabulary_size, output=path + ".partial")
        os.replace(path + ".partial", path)
    return ConvBertTokenizer(vocabulary=path)


def participation_ratio(states):
    """How many directions the rows of `states` `(N, D)` spread over: the
    participation ratio `(sum l)^2 / sum l^2` of the eigenvalues `l` of
    their covariance; `D` when they spread evenly, 1 on a line."""
    covariance = np.cov(np.asarray(states, "float64"), rowvar=False)
    eigenvalues = np.clip(np.linalg.eigvalsh(covariance), 0.0, None)
    return float(eigenvalues.sum() ** 2 / (eigenvalues**2).sum())


def token_state_spread(backbone, preprocessor, texts):
    """The `participation_ratio` of the token states after each encoder
    layer, padding left out, over `texts`: a list, bottom layer first.

    It shows a collapse a fine-tuning run inherits: a replaced-token-
    detection discriminator's top layer answers one question per token
    (original or replaced), and at the comparison's size its states end
    up spread over a few directions, where masked-LM pretraining and
    random weights keep tens (`ConvBertBackbone.reinitialize_top_layers`).
    """
    import keras

    inputs = preprocessor(texts)
    layers = keras.Model(backbone.inputs, [layer.output for layer in backbone.transformer_layers])
    outputs = layers.predict_on_batch(inputs)
    real = np.asarray(inputs["padding_mask"]).astype(bool)
    return [participation_ratio(np.asarray(states)[real]) for states in outputs]


def arm_directory(output_dir, seed, arm):
    """The folder of one arm's runs: `pretrain/` (pretrained arms; a
    `_reinit` arm uses its `pretraining_arm`'s), `finetune/` (whose
    `preset/` is the chosen classifier) and `results.json`."""
    return os.path.join(output_dir, f"seed_{seed}", arm)


def _finished(path, settings):
    """The results of a finished run made with `settings`, or `None`."""
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        results = json.load(f)
    changed = sorted(k for k in settings if results["settings"].get(k) != settings[k])
    if changed:
        name = changed[0]
        raise ValueError(
            f"{path} was made with {name}={results['settings'].get(name)!r}, not "
            f"{settings[name]!r}; use another output folder, or the same settings to reuse it."
        )
    return results


def run_arm(
    arm,
    data,
    corpus,
    tokenizer,
    output_dir,
    seed=0,
    pretrain_steps=1500,
    pretrain_batch_size=32,
    pretrain_learning_rate=1e-3,
    generator_size=0.25,
    sampling_temperature=1.0,
    epochs=10,
    learning_rate=5e-4,
    pooling="mean",
    sequence_length=64,
    config=None,
    log=print,
    verbose=0,
):
    """One arm of the comparison for one seed; returns its results dict
    (`"test"`, `"best"`, and for pretrained arms `"pretraining"`, the
    last interval's pretraining metrics and the pretrained encoder's
    `token_state_spread` on validation snippets). `verbose=1` shows the
    pretraining and fine-tuning runs' progress."""
    import tensorflow as tf

    from convbert_keras.lab.baselines import bag_of_words_baseline
    from convbert_keras.models.text_classifier_preprocessor import (
        ConvBertTextClassifierPreprocessor,
    )
    from convbert_keras.training.finetuning import FinetuneConfig
    from convbert_keras.training.finetuning import finetune
    from convbert_keras.training.pretraining import PretrainConfig
    from convbert_keras.training.pretraining import pretrain

    if arm not in ARMS:
        raise ValueError(f"Unknown arm {arm!r}; expected one of {ARMS}.")
    config = dict(config or COMPARISON_CONFIG, max_sequence_length=sequence_length)
    settings = dict(
        labels=len(data.train[0]),
        vocabulary_size=tokenizer.vocabulary_size(),
        config=config,
        pretrain_steps=pretrain_steps,
        pretrain_batch_size=pretrain_batch_size,
        pretrain_learning_rate=pretrain_learning_rate,
        generator_size=generator_size,
        sampling_temperature=sampling_temperature,
        epochs=epochs,
        learning_rate=learning_rate,
        pooling=pooling,
    )
    run_dir = arm_directory(output_dir, seed, arm)
    results_path = os.path.join(run_dir, "results.json")
    done = _finished(results_path, settings)
    if done is not None:
        log(f"    {arm}: finished earlier, reusing {results_path}")
        return done
    os.makedirs(run_dir, exist_ok=True)
    if arm == "bag_of_words":
        results = dict(bag_of_words_baseline(data, seed=seed), settings=settings)
        write_json(results_path, results)
        return results
    preset, pretraining, reinitialize_layers = None, None, 0
    if arm in PRETRAINED_ARMS:
        overrides, objective, reinitialize_layers = PRETRAINED_ARMS[arm]
        pretrain_dir = os.path.join(
            arm_directory(output_dir, seed, pretraining_arm(arm)), "pretrain"
        )
        pretrained = pretrain(
            lambda: tf.data.Dataset.from_tensor_slices(corpus),
            tokenizer,
            pretrain_dir,
            PretrainConfig(
                backbone=dict(config, **overrides, vocabulary_size=tokenizer.vocabulary_size()),
                steps=pretrain_steps,
                batch_size=pretrain_batch_size,
                sequence_length=sequence_length,
                learning_rate=pretrain_learning_rate,
                checkpoint_every=max(1, pretrain_steps // 12),
                seed=seed,
                objective=objective,
                generator_size=generator_size,
                sampling_temperature=sampling_temperature,
            ),
            verbose=verbose,
        )
        preset = os.path.join(pretrain_dir, "preset")
        texts = list(next(iter(data.validation.values()))[0][:SPREAD_TEXTS])
        spread = token_state_spread(
            pretrained["discriminator"],
            ConvBertTextClassifierPreprocessor(tokenizer, sequence_length=sequence_length),
            texts,
        )
        pretraining = dict(pretrained["metrics"], token_state_spread=spread)
    results = finetune(
        data,
        os.path.join(run_dir, "finetune"),
        FinetuneConfig(
            preset=preset,
            size=None if preset else config,
            vocabulary=tokenizer.vocabulary,
            epochs=epochs,
            batch_size=32,
            learning_rate=learning_rate,
            layer_decay=1.0,
            sequence_length=sequence_length,
            pooling=pooling,
            reinitialize_layers=reinitialize_layers,
            seed=seed,
        ),
        verbose=verbose,
    )
    results = {
        "best": results["best"],
        "test": results["test"]["test"],
        "pretraining": pretraining,
        "settings": settings,
    }
    write_json(results_path, results)
    return results


def compare_pretraining(output_dir, arms=ARMS, seeds=(0, 1, 2), labels=1000, log=print, **settings):
    """Runs `arms` for every seed and returns `{arm: [test accuracy per
    seed]}` (also written to `<output_dir>/summary.json`).

    Each seed draws its own `labels` labelled training snippets; every
    pretrained arm pretrains on the text of all training snippets (the
    labels unused) for the same number of steps; validation movies choose
    the epoch and test movies, used for nothing else, give the score.
    `settings` are `run_arm`'s keyword arguments.
    """
    from convbert_keras.data import load_rotten_tomatoes_splits
    from convbert_keras.data.finetune_data import named_data

    corpus = load_rotten_tomatoes_splits()["train"][0]
    tokenizer = comparison_tokenizer(output_dir, corpus)
    accuracy = {arm: [] for arm in arms}
    for seed in seeds:
        data = named_data("rotten_tomatoes", max_train_examples=labels, seed=seed)
        for arm in arms:
            log(f"seed {seed}: {arm}")
            results = run_arm(
                arm, data, corpus, tokenizer, output_dir, seed=seed, log=log, **settings
            )
            accuracy[arm].append(results["test"]["accuracy"])
            log(f"    test accuracy {accuracy[arm][-1]:.3f}")
    write_json(
        os.path.join(output_dir, "summary.json"),
        {
            "labels": labels,
            "seeds": list(seeds),
            "settings": settings,
            "test_accuracy": accuracy,
        },
    )
    return accuracy


def summary_table(accuracy):
    """A Markdown table: mean and standard deviation of the test accuracy
    per arm, and every seed's value."""
    lines = ["| arm | test accuracy (mean ± sd) | per seed |", "|---|---|---|"]
    for arm, values in accuracy.items():
        values = np.asarray(values)
        spread = f" ± {values.std(ddof=1):.3f}" if len(values) > 1 else ""
        lines.append(
            f"| {arm} | {values.mean():.3f}{spread} | "
            + ", ".join(f"{v:.3f}" for v in values)
            + " |"
        )
    return "\n".join(lines)
