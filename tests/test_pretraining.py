"""Replaced-token-detection pretraining: masking, the corpus pipeline, runs."""

import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from support import SENTENCES
from support import SHALLOW
from support import TINY
from support import tokenizer
from support import train_step_traces

from convbert_keras import ConvBertBackbone
from convbert_keras.data.corpus import pack_sentences
from convbert_keras.data.corpus import pretraining_dataset
from convbert_keras.data.corpus import text_file_documents
from convbert_keras.models.pretrainer import ConvBertPretrainer
from convbert_keras.models.pretrainer import generator_config
from convbert_keras.training.optimizers import WarmupLinearDecay
from convbert_keras.training.pretraining import PretrainConfig
from convbert_keras.training.pretraining import pretrain


def pretrainer(backbone=TINY, **kwargs):
    return ConvBertPretrainer(
        ConvBertBackbone(**backbone), mask_token_id=4, special_token_ids=[0, 2, 3], seed=1, **kwargs
    )


def batch(rows=64, length=32, real=24):
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 64, (rows, length)).astype("int32")
    ids[:, 0], ids[:, real - 1], ids[:, real:] = 2, 3, 0
    mask = np.zeros_like(ids)
    mask[:, :real] = 1
    return {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": mask}


def test_generator_is_a_quarter_width_and_shares_the_embeddings():
    model = pretrainer()
    assert model.generator.hidden_dim == 8 and model.generator.num_layers == 2
    assert model.generator.token_embedding is model.discriminator.token_embedding
    # The original code's sizes (hidden, heads, FFN), worked out from its
    # run_pretraining.py: round(h * s), max(1, heads * s), 4 x hidden.
    from convbert_keras.models.configs import convbert_config

    for size, fraction, expected in [
        ("small", 0.25, (64, 1, 256)),
        ("medium-small", 0.25, (96, 2, 384)),
        ("base", 1 / 3, (256, 4, 1024)),
    ]:
        config = generator_config(convbert_config(size), fraction)
        assert (config["hidden_dim"], config["num_heads"], config["intermediate_dim"]) == expected
        assert config["num_groups"] == convbert_config(size)["num_groups"]
        assert config["embedding_dim"] == convbert_config(size)["embedding_dim"]
    # Shared variables are trained once, not twice.
    variables = [id(v) for v in model.trainable_variables]
    assert len(variables) == len(set(variables))
    # 5 embedding variables shared; the heads, built with the model: the
    # generator's (dense kernel and bias, LayerNorm scale and offset, output
    # bias) and the discriminator's (two dense kernels and biases).
    assert len(variables) == 2 * 53 - 5 + 5 + 4


def test_masking_follows_the_recipe():
    model = pretrainer(mask_token_rate=0.85)
    x = batch()
    seeds = [tf.constant([7, 11]), tf.constant([8, 12]), tf.constant([9, 13])]
    positions, weights, original, masked = (
        np.asarray(t) for t in model.mask(x["token_ids"], x["padding_mask"], seeds)
    )
    # 22 maskable tokens per row (24 real minus [CLS] and [SEP]): round(0.15 * 22) = 3.
    np.testing.assert_array_equal(weights.sum(axis=1), 3)
    chosen = np.take_along_axis(positions, np.argsort(-weights, axis=1), axis=1)[:, :3]
    assert chosen.min() >= 1 and chosen.max() <= 22  # never [CLS], [SEP] or padding
    np.testing.assert_array_equal(np.take_along_axis(x["token_ids"], positions, 1), original)
    changed = masked != x["token_ids"]
    assert changed.sum() <= weights.sum()
    assert set(np.unique(masked[changed])) == {4}
    # About 85% of the masked positions show [MASK], the rest keep their token.
    assert 0.75 < changed.sum() / weights.sum() < 0.95


def test_outputs_label_exactly_the_replaced_tokens():
    model = pretrainer()
    x = batch()
    out = {k: np.asarray(v) for k, v in model(x).items()}
    assert out["generator_logits"].shape == (64, model.max_predictions, 64)
    replaced = out["replaced"].astype(bool)
    assert not replaced[x["padding_mask"] == 0].any()
    per_row_masked = out["mask_weights"].sum(axis=1)
    assert (replaced.sum(axis=1) <= per_row_masked).all() and replaced.any()


@pytest.mark.slow
def test_pretraining_step_compiles_with_xla_and_losses_fall():
    model = pretrainer(SHALLOW)
    model.compile(optimizer=keras.optimizers.AdamW(2e-3))
    assert model.jit_compile is True
    x = batch()
    traces, history = train_step_traces(model, x, batch_size=16, epochs=6, verbose=0)
    # Built with its heads, the pretrainer lets `fit` build the optimizer
    # before the step is traced (see test_tasks.py for Keras' own two).
    assert traces == 1
    history = history.history
    assert history["mlm_loss"][-1] < history["mlm_loss"][0]
    assert history["rtd_loss"][-1] < history["rtd_loss"][0]
    assert set(history) >= {
        "generator_accuracy",
        "discriminator_accuracy",
        "replaced_precision",
        "replaced_recall",
    }


def test_pretrainer_config_round_trip():
    model = pretrainer(max_predictions=6)
    clone = ConvBertPretrainer.from_config(model.get_config())
    assert clone.max_predictions == 6 and clone.generator.hidden_dim == 8
    assert clone.generator.token_embedding is clone.discriminator.token_embedding


def test_warmup_then_linear_decay_as_electra_computes_it():
    schedule = WarmupLinearDecay(1e-3, warmup_steps=10, total_steps=100)
    values = [float(schedule(s)) for s in (0, 5, 10, 60, 100, 200)]
    # ELECTRA: 1e-3 * (1 - step / 100) * min(1, step / 10), by hand.
    np.testing.assert_allclose(values, [0, 4.75e-4, 9e-4, 4e-4, 0, 0], atol=1e-9)


def test_sentences_are_packed_in_order_up_to_the_length():
    docs = tf.data.Dataset.from_tensor_slices(
        ["the movie was good. the plot was bad!", "hello world."]
    )
    packed = [t.numpy().tolist() for t in pack_sentences(docs, tokenizer(), 10)]
    # "the movie was good ." (5) fits; "+ the plot was bad !" would need 10 > 8.
    assert packed == [[2, 5, 16, 9, 18, 33, 3], [2, 5, 21, 9, 19, 35, 28, 29, 33, 3]]


def test_pretraining_dataset_is_deterministic_and_split_by_replica(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES * 5), encoding="utf-8")

    def first_batches(**kwargs):
        ds = pretraining_dataset(
            text_file_documents([corpus]), tokenizer(), 16, 4, seed=3, **kwargs
        )
        return [b["token_ids"].numpy() for b in ds.take(3)]

    a, b = first_batches(), first_batches()
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert a[0].shape == (4, 16) and (a[0][:, 0] == 2).all()
    whole = pretraining_dataset(text_file_documents([corpus]), tokenizer(), 16, 4, seed=3)
    # Without tf.data's autotuning (see `pipeline_options`).
    assert whole.options().autotune.enabled is False
    global_batches = [b["token_ids"].numpy() for b in whole.take(3)]
    # Two workers of one replica, one worker of two replicas: each
    # replica's rows of a step are its slice of the global batch.
    for pipelines in (2, 1):
        parts = []
        for pipeline in range(pipelines):
            context = tf.distribute.InputContext(pipelines, pipeline, num_replicas_in_sync=2)
            ds = pretraining_dataset(
                text_file_documents([corpus]), tokenizer(), 16, 4, seed=3, input_context=context
            )
            parts.append([b["token_ids"].numpy() for b in ds.take(6 // pipelines)])
        replica_batches = (
            [batch for steps in zip(*parts) for batch in steps] if pipelines == 2 else parts[0]
        )
        for step, expected in enumerate(global_batches):
            np.testing.assert_array_equal(
                np.concatenate(replica_batches[2 * step : 2 * step + 2]), expected
            )
    # A resumed run skips whole global batches.
    resumed = pretraining_dataset(
        text_file_documents([corpus]), tokenizer(), 16, 4, seed=3, skip_batches=2
    )
    np.testing.assert_array_equal(next(iter(resumed))["token_ids"].numpy(), global_batches[2])


def test_blank_line_separated_documents(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("first line\nsame document\n\n\nsecond document\n", encoding="utf-8")
    docs = [d.numpy().decode() for d in text_file_documents([corpus], blank_line_separated=True)]
    assert docs == ["first line same document", "second document"]


def run_pretrain(tmp_path, corpus_text, **kwargs):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(corpus_text, encoding="utf-8")
    settings = dict(
        backbone=SHALLOW,
        batch_size=4,
        sequence_length=16,
        steps=4,
        checkpoint_every=2,
    )
    settings.update(kwargs)
    return pretrain(
        lambda: text_file_documents([corpus]),
        tokenizer(),
        str(tmp_path / "run"),
        PretrainConfig(**settings),
        verbose=0,
    )


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One finished 6-step run (a checkpoint every 2 steps), which the tests
    below load, re-run and try to change: one compilation for all of them."""
    tmp_path = tmp_path_factory.mktemp("pretrain")
    return tmp_path, run_pretrain(tmp_path, "\n".join(SENTENCES * 10), steps=6)


@pytest.mark.slow
def test_pretrain_writes_a_preset_that_tasks_load(finished_run):
    from convbert_keras import ConvBertTextClassifier
    from convbert_keras import ConvBertTextClassifierPreprocessor

    tmp_path, result = finished_run
    assert result["steps"] == 6
    preset = tmp_path / "run" / "preset"
    preprocessor = ConvBertTextClassifierPreprocessor.from_preset(str(preset), sequence_length=16)
    classifier = ConvBertTextClassifier.from_preset(
        str(preset), num_classes=2, preprocessor=preprocessor
    )
    history = classifier.fit(
        x=["the movie was good", "the plot was bad"],
        y=np.array([1, 0]),
        batch_size=2,
        epochs=2,
        verbose=0,
    ).history
    assert np.isfinite(history["loss"]).all()
    assert classifier.predict(["the movie was good"], verbose=0).shape == (1, 2)
    assert sorted(os.listdir(tmp_path / "run" / "logs"))


@pytest.mark.slow
def test_the_run_folder_gives_back_the_resolved_config(finished_run):
    run_dir = finished_run[0] / "run"
    given = PretrainConfig(
        backbone=SHALLOW, batch_size=4, sequence_length=16, steps=5, checkpoint_every=2
    )
    # 5 steps round up to 3 intervals of 2; warmup 10% of 6; SHALLOW's 32
    # positions already hold 16 tokens.
    assert (given.resolved().steps, given.resolved().warmup_steps) == (6, 0)
    assert PretrainConfig.from_run(str(run_dir)) == given.resolved()


def test_configs_are_checked_before_anything_runs():
    with pytest.raises(ValueError, match="`backbone` must be a dict"):
        PretrainConfig().resolved()
    with pytest.raises(ValueError, match="`objective` must be one of"):
        PretrainConfig(backbone=TINY, objective="mlm+rtd").resolved()
    with pytest.raises(ValueError, match="`steps` and `checkpoint_every` must be positive"):
        PretrainConfig(backbone=TINY, steps=0).resolved()
    with pytest.raises(ValueError, match="`mixed_precision` must be None or one of"):
        PretrainConfig(backbone=TINY, mixed_precision="float16").resolved()
    from convbert_keras.training.finetuning import FinetuneConfig

    with pytest.raises(ValueError, match="`checkpoint_every` must be positive. Received: 0"):
        FinetuneConfig(size="small", checkpoint_every=0).resolved()
    with pytest.raises(ValueError, match="`pooling` must be one of"):
        FinetuneConfig(size="small", pooling="max").resolved()
    # Positions grow to the sequence length when the backbone has fewer.
    assert (
        PretrainConfig(backbone=TINY, sequence_length=48).resolved().backbone["max_sequence_length"]
        == 48
    )


def test_every_setting_is_a_command_line_option():
    """The CLIs are built from the config dataclasses: a new setting gets
    its option, help and default without touching them."""
    import dataclasses

    from convbert_keras.cli import finetune as finetune_script
    from convbert_keras.cli import pretrain as pretrain_script
    from convbert_keras.training.finetuning import FinetuneConfig

    for script, config_cls, given_otherwise in [
        (pretrain_script, PretrainConfig, {"backbone"}),
        (finetune_script, FinetuneConfig, {"preset", "size", "vocabulary"}),
    ]:
        options = {a.dest for a in script.build_parser()._actions}
        fields = {f.name for f in dataclasses.fields(config_cls)}
        assert fields - given_otherwise <= options, fields - given_otherwise - options
    args = finetune_script.build_parser().parse_args(
        ["--task", "rte", "--preset", "p", "--output", "o", "--no-xla", "--epochs", "5"]
    )
    config = finetune_script.config_from_arguments(
        FinetuneConfig, args, finetune_script.TRAINING_SETTINGS, preset="p"
    )
    assert config == FinetuneConfig(preset="p", epochs=5, jit_compile=False)


@pytest.mark.slow
def test_pretrain_bad_input_fails_early(tmp_path, finished_run):
    with pytest.raises(ValueError, match="gives no training sequence"):
        run_pretrain(tmp_path, "\n \n\n")
    with pytest.raises(ValueError, match="tokenizer has 64 word pieces but the model embeds 100"):
        run_pretrain(tmp_path, "\n".join(SENTENCES), backbone=dict(SHALLOW, vocabulary_size=100))
    used = finished_run[0]
    # Every setting that changes the result is named with both values.
    for change, message in [
        (
            dict(backbone=dict(SHALLOW, num_layers=3)),
            "backbone.num_layers=1; this one has backbone.num_layers=3",
        ),
        (dict(batch_size=2), "batch_size=4; this one has batch_size=2"),
        (dict(learning_rate=1e-3), "learning_rate=0.0005; this one has learning_rate=0.001"),
        (dict(seed=1), "seed=0; this one has seed=1"),
        (dict(steps=8), "steps=6; this one has steps=8"),
        (dict(warmup_steps=3), "warmup_steps=0; this one has warmup_steps=3"),
        (dict(corpus_text="\n".join(SENTENCES[::-1] * 10)), "first_batch_sha256="),
    ]:
        text = change.pop("corpus_text", "\n".join(SENTENCES * 10))
        with pytest.raises(ValueError, match=re.escape(message)):
            run_pretrain(used, text, **dict(dict(steps=6), **change))
    with pytest.raises(ValueError, match="Corpus file"):
        text_file_documents([tmp_path / "missing.txt"])


def test_tfds_documents_under_mock_data():
    import tensorflow_datasets as tfds

    from convbert_keras.data.corpus import tfds_documents

    with tfds.testing.mock_data(num_examples=3):
        documents = list(tfds_documents("imdb_reviews", split="train"))
        assert len(documents) == 3 and all(d.dtype == tf.string for d in documents)
        with pytest.raises(ValueError, match="has no field 'body'; its fields are"):
            tfds_documents("imdb_reviews", split="train", text_key="body")


@pytest.mark.slow
def test_pretrain_with_mixed_precision_keeps_the_global_policy(tmp_path):
    result = run_pretrain(tmp_path, "\n".join(SENTENCES * 10), mixed_precision="mixed_bfloat16")
    assert result["discriminator"].dtype_policy.name == "mixed_bfloat16"
    assert np.isfinite(result["history"]["loss"]).all()
    assert keras.config.dtype_policy().name == "float32"


def test_discriminator_sees_the_sampled_tokens_and_labels_exactly_the_changes():
    model = pretrainer(sampling_temperature=1e-4)
    x = batch()
    out = {k: np.asarray(v) for k, v in model(x).items()}
    corrupted, weights, positions = out["corrupted_ids"], out["mask_weights"], out["mask_positions"]
    # Near zero temperature the Gumbel sample is the generator's argmax.
    argmax = out["generator_logits"].argmax(-1)
    rows = np.arange(len(corrupted))[:, None]
    np.testing.assert_array_equal(corrupted[rows, positions][weights == 1], argmax[weights == 1])
    untouched = np.ones_like(corrupted, bool)
    untouched[np.broadcast_to(rows, positions.shape)[weights == 1], positions[weights == 1]] = False
    np.testing.assert_array_equal(corrupted[untouched], x["token_ids"][untouched])
    np.testing.assert_array_equal(out["replaced"], corrupted != x["token_ids"])
    with pytest.raises(ValueError, match="`sampling_temperature` must be positive"):
        pretrainer(sampling_temperature=0)


def test_high_temperature_samples_spread_over_the_vocabulary():
    x = batch()
    sampled = {}
    for temperature in (1.0, 1e4):
        out = pretrainer(sampling_temperature=temperature)(x)
        weights = np.asarray(out["mask_weights"]) == 1
        ids = np.take_along_axis(
            np.asarray(out["corrupted_ids"]), np.asarray(out["mask_positions"]), 1
        )
        sampled[temperature] = ids[weights]
    # At 10^4 the softmax is flat: about all 64 ids among ~190 draws.
    assert len(set(sampled[1e4])) > 55


def test_learning_curve_metrics_are_the_ones_they_claim(tmp_path):
    from sklearn.metrics import roc_auc_score

    model = pretrainer()
    model.compile(optimizer=keras.optimizers.AdamW(1e-3))
    x = batch()
    model(x)
    # Spread the initial probabilities (all near 0.5) over Keras' 200 AUC
    # thresholds, so that its interpolation is close to the exact AUC.
    model.discriminator_logits.kernel.assign(model.discriminator_logits.kernel * 100)
    out = {k: np.asarray(v) for k, v in model(x).items()}
    metrics = {k: float(v) for k, v in model.compute_metrics(x, None, out).items()}
    real = x["padding_mask"] == 1
    replaced = out["replaced"][real]
    share = replaced.mean()
    # The loss of the best constant guess: the binary entropy of the share.
    entropy = -share * np.log(share) - (1 - share) * np.log(1 - share)
    assert metrics["rtd_base_rate_loss"] == pytest.approx(entropy, rel=1e-5)
    probability = 1 / (1 + np.exp(-out["discriminator_logits"][real]))
    # Keras' AUC interpolates over 200 thresholds.
    assert metrics["replaced_auc"] == pytest.approx(roc_auc_score(replaced, probability), abs=0.02)


@pytest.mark.slow
def test_masked_lm_objective_trains_the_model_itself_without_a_generator():
    model = pretrainer(SHALLOW, objective="mlm")
    assert model.generator is None
    out = model(batch())
    assert set(out) == {
        "generator_logits",
        "mask_positions",
        "mask_weights",
        "original_ids",
        "padding_mask",
    }
    model.compile(optimizer=keras.optimizers.AdamW(2e-3))
    history = model.fit(batch(), batch_size=16, epochs=4, verbose=0).history
    assert set(history) == {"loss", "mlm_loss", "generator_accuracy"}
    assert history["mlm_loss"][-1] < history["mlm_loss"][0]
    variables = {id(v) for v in model.trainable_variables}
    assert variables == {id(v) for v in model.discriminator.trainable_variables} | {
        id(v) for v in model.generator_head.trainable_variables
    }
    clone = ConvBertPretrainer.from_config(model.get_config())
    assert clone.objective == "mlm" and clone.generator is None
    with pytest.raises(ValueError, match="`objective` must be one of"):
        pretrainer(objective="clm")
    discriminator = ConvBertBackbone(**TINY)
    generator = ConvBertBackbone(
        **dict(TINY, hidden_dim=8, num_heads=2, intermediate_dim=16),
        shared_embeddings=discriminator,
    )
    with pytest.raises(ValueError, match="trains no generator; pass `generator=None`"):
        ConvBertPretrainer(discriminator, 4, [0, 2, 3], generator=generator, objective="mlm")


@pytest.mark.slow
def test_learning_curve_is_written_once_per_interval_and_a_finished_run_reports_it(finished_run):
    from convbert_keras.training.pretraining import read_learning_curve

    tmp_path, first = finished_run
    curve = read_learning_curve(tmp_path / "run")
    assert [r["step"] for r in curve] == [2, 4, 6]
    for key in (
        "rtd_loss",
        "rtd_base_rate_loss",
        "replaced_auc",
        "replaced_recall",
        "replaced_precision",
        "generator_accuracy",
        "learning_rate",
    ):
        assert [r[key] for r in curve] == pytest.approx(first["history"][key])
    # Run again: nothing left to train; the last interval is still reported.
    again = run_pretrain(tmp_path, "\n".join(SENTENCES * 10), steps=6)
    assert again["steps_run"] == 0 and again["metrics"] == curve[-1]
    assert [r["step"] for r in read_learning_curve(tmp_path / "run")] == [2, 4, 6]
    # A finished run whose preset went missing writes it again, unchanged.
    import shutil

    weights = ConvBertBackbone.from_preset(str(tmp_path / "run" / "preset")).get_weights()
    shutil.rmtree(tmp_path / "run" / "preset")
    run_pretrain(tmp_path, "\n".join(SENTENCES * 10), steps=6)
    for a, b in zip(
        weights, ConvBertBackbone.from_preset(str(tmp_path / "run" / "preset")).get_weights()
    ):
        np.testing.assert_array_equal(a, b)


def test_named_recipes_are_the_original_codes_settings():
    from convbert_keras.cli import pretrain as script
    from convbert_keras.models.configs import CONVBERT_CONFIGS
    from convbert_keras.models.configs import convbert_config

    def settings(*options):
        args = script.build_parser().parse_args(["--corpus", "c.txt", "--output", "o", *options])
        config = script.pretrain_config(args, vocabulary_size=99)
        (size,) = [
            name
            for name in CONVBERT_CONFIGS
            if dict(convbert_config(name), vocabulary_size=99) == config.backbone
        ]
        return (
            size,
            config.learning_rate,
            config.batch_size,
            config.steps,
            config.warmup_steps,
            config.sequence_length,
            config.mask_rate,
            config.generator_size,
            config.weight_decay,
        )

    # configure_pretraining.py of yitu-opensource/ConvBert: defaults, then
    # small: lr 3e-4; base: lr 2e-4, batch 256, generator 1/3.
    assert settings("--recipe", "small") == (
        "small",
        3e-4,
        128,
        1_000_000,
        10_000,
        128,
        0.15,
        0.25,
        0.01,
    )
    assert settings("--recipe", "medium-small") == (
        "medium-small",
        5e-4,
        128,
        1_000_000,
        10_000,
        128,
        0.15,
        0.25,
        0.01,
    )
    assert settings("--recipe", "base") == (
        "base",
        2e-4,
        256,
        1_000_000,
        10_000,
        128,
        0.15,
        1 / 3,
        0.01,
    )
    # An option beside a recipe overrides that setting only.
    assert settings("--recipe", "small", "--steps", "50")[:4] == ("small", 3e-4, 128, 50)
    assert settings()[:4] == ("small", 5e-4, 32, 1000)
    from convbert_keras.training.recipes import pretraining_recipe

    with pytest.raises(ValueError, match="Unknown recipe 'tiny'; choose one of"):
        pretraining_recipe("tiny")


def test_strategy_names_and_options_are_checked():
    from convbert_keras.distribute import make_strategy

    with pytest.raises(ValueError, match="Unknown strategy 'ring'"):
        make_strategy("ring")
    with pytest.raises(ValueError, match="`cpu_devices` goes with the mirrored strategy only"):
        make_strategy("default", cpu_devices=2)
    with pytest.raises(ValueError, match="reads the cluster from TF_CONFIG"):
        make_strategy("multi_worker")


class _OptimizerMade(Exception):
    """Stops a run as soon as it has made its optimizer."""


def test_readme_defaults_masked_positions_rtd_weight_and_optimizer(tmp_path, monkeypatch):
    from convbert_keras.models.pretrainer import default_max_predictions
    from convbert_keras.training import pretraining

    # README: at most int(0.155 x length) masked positions; loss = MLM + 50 x RTD.
    assert default_max_predictions(0.15, 128) == 19
    assert pretrainer().rtd_weight == 50
    # README: AdamW eps 1e-6, weight decay 0.01, global-norm clipping 1.0, as
    # `pretrain` makes it.
    real, made = pretraining.adamw, []

    def spy(*args, **kwargs):
        made.append(real(*args, **kwargs))
        raise _OptimizerMade

    monkeypatch.setattr(pretraining, "adamw", spy)
    with pytest.raises(_OptimizerMade):
        run_pretrain(tmp_path, "\n".join(SENTENCES * 10))
    (optimizer,) = made
    assert optimizer.epsilon == 1e-6 and optimizer.global_clipnorm == 1.0
    assert optimizer.decoupled_weight_decay == 0.01
