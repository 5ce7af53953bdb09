"""Fine-tuning: the optimiser, the data readers, and runs of every task."""

import json
import os
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from support import SHALLOW
from support import TINY
from support import VOCAB

from convbert_keras import ConvBertBackbone
from convbert_keras import ConvBertTokenizer
from convbert_keras.data.tables import read_labelled_file
from convbert_keras.training.optimizers import ConvBertAdamW


def one_step(optimizer):
    keras.utils.set_random_seed(0)
    backbone = ConvBertBackbone(**TINY)
    variables = backbone.trainable_variables
    before = [np.array(v) for v in variables]
    optimizer.build(variables)
    optimizer.apply([keras.ops.ones_like(v) for v in variables], variables)
    return variables, [np.array(v) - b for v, b in zip(variables, before)], before


def test_without_layer_decay_it_is_keras_adamw_without_decay_on_norms_and_biases():
    reference = keras.optimizers.AdamW(1e-2, weight_decay=0.1)
    reference.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    _, expected, _ = one_step(reference)
    _, got, _ = one_step(ConvBertAdamW(1e-2, weight_decay=0.1))
    for a, b in zip(expected, got):
        np.testing.assert_allclose(a, b, atol=1e-7)


def electra_rates(name, num_layers, layer_decay):
    """ELECTRA's per-variable rate factor and weight decay, from its own
    rules on its TF1 names (`model/optimization.py`: `_get_layer_lrs`, and
    `exclude_from_weight_decay=["LayerNorm", "layer_norm", "bias"]`)."""
    key_to_depths = {"/embeddings/": 0, "/embeddings_project/": 0, "task_specific/": num_layers + 2}
    for layer in range(num_layers):
        key_to_depths[f"encoder/layer_{layer}/"] = layer + 1
    factor = 1.0  # a variable no key names keeps the base rate
    for key, depth in key_to_depths.items():
        if key in name:
            factor = layer_decay ** (num_layers + 2 - depth)
    decayed = not any(word in name for word in ("LayerNorm", "layer_norm", "bias"))
    return factor, decayed


def electra_names(classifier):
    """Each trainable variable of a classifier under its ELECTRA name:
    backbone weights by the converter's map (transformers' names are
    ELECTRA's with dots, `layer.0` for `layer_0`), the head as
    `task_specific/`."""
    from convbert_keras.models.hf_weights import backbone_weight_map

    names = {
        id(v): "electra/" + re.sub(r"layer\.(\d+)\.", r"layer_\1.", hf).replace(".", "/")
        for v, hf, _ in backbone_weight_map(classifier.backbone)
    }
    return [names.get(id(v), "task_specific/" + v.path) for v in classifier.trainable_variables]


def test_learning_rates_and_weight_decay_follow_electras_depth_table():
    from convbert_keras import ConvBertTextClassifier

    keras.utils.set_random_seed(0)
    classifier = ConvBertTextClassifier(ConvBertBackbone(**TINY), num_classes=2, preprocessor=None)
    classifier(
        {
            "token_ids": np.ones((1, 4), "int32"),
            "segment_ids": np.zeros((1, 4), "int32"),
            "padding_mask": np.ones((1, 4), "int32"),
        }
    )
    variables = classifier.trainable_variables
    expected = [electra_rates(name, 2, 0.5) for name in electra_names(classifier)]
    assert {factor for factor, _ in expected} == {1.0, 0.5**2, 0.5**3, 0.5**4}

    def step(optimizer, gradient):
        before = [np.array(v) for v in variables]
        optimizer.build(variables)
        optimizer.apply([gradient(v) for v in variables], variables)
        moved = [np.array(v) - b for v, b in zip(variables, before)]
        for v, b in zip(variables, before):
            v.assign(b)
        return moved, before

    # Adam's first step moves every weight by about its learning rate.
    moved, _ = step(
        ConvBertAdamW(1e-2, weight_decay=0.0, layer_decay=0.5, num_layers=2), keras.ops.ones_like
    )
    for variable, step_taken, (factor, _) in zip(variables, moved, expected):
        np.testing.assert_allclose(
            np.abs(step_taken), 1e-2 * factor, rtol=1e-3, err_msg=variable.path
        )
    # With no gradient only the decoupled weight decay moves a weight.
    moved, before = step(
        ConvBertAdamW(1e-2, weight_decay=0.1, layer_decay=0.5, num_layers=2), keras.ops.zeros_like
    )
    for variable, step_taken, weight, (factor, decayed) in zip(variables, moved, before, expected):
        np.testing.assert_allclose(
            step_taken, -1e-3 * factor * weight * decayed, atol=1e-8, err_msg=variable.path
        )
    with pytest.raises(ValueError, match="needs `num_layers`"):
        ConvBertAdamW(1e-3, layer_decay=0.8)


def test_the_masked_lm_output_bias_is_not_decayed():
    from convbert_keras.models.pretrainer import ConvBertPretrainer
    from convbert_keras.training.optimizers import decays

    pretrainer = ConvBertPretrainer(
        ConvBertBackbone(**TINY), mask_token_id=4, special_token_ids=[0, 2, 3]
    )
    pretrainer(
        {
            "token_ids": np.full((1, 8), 5, "int32"),
            "segment_ids": np.zeros((1, 8), "int32"),
            "padding_mask": np.ones((1, 8), "int32"),
        }
    )
    biases = [v.path for v in pretrainer.trainable_variables if v.path.endswith("output_bias")]
    assert biases and not any(decays(path) for path in biases)


def test_tables_read_csv_tsv_jsonl(tmp_path):
    (tmp_path / "a.csv").write_text(
        'text,other,label\nfine film,x,pos\n"bad, bad",y,neg\n', encoding="utf-8"
    )
    assert read_labelled_file(tmp_path / "a.csv", "text", "label", ["neg", "pos"]) == (
        ["fine film", "bad, bad"],
        [1, 0],
    )
    (tmp_path / "a.tsv").write_text(
        "s1\ts2\tscore\ta\tb\t3.5\n".replace("\ta\t", "\na\t"), encoding="utf-8"
    )
    assert read_labelled_file(tmp_path / "a.tsv", ["s1", "s2"], "score") == ((["a"], ["b"]), [3.5])
    (tmp_path / "a.jsonl").write_text(
        '{"t": "x", "l": 1}\n\n{"t": "y", "l": 0}\n', encoding="utf-8"
    )
    assert read_labelled_file(tmp_path / "a.jsonl", "t", "l", [0, 1]) == (["x", "y"], [1, 0])


def test_tables_bad_input_is_named(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"t": "x", "l": 1}\n{"t": "y", "l": 0\n', encoding="utf-8")
    with pytest.raises(ValueError, match="line 2: not valid JSON"):
        read_labelled_file(path, "t", "l", [0, 1])
    path.write_text('{"t": "x", "l": 1}\n{"text": "y", "l": 0}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"line 2: no column 't'"):
        read_labelled_file(path, "t", "l", [0, 1])
    path.write_text('{"t": "x", "l": 7}\n', encoding="utf-8")
    with pytest.raises(
        ValueError, match=r"line 1: label 7 is not one of the declared labels \['0', '1'\]"
    ):
        read_labelled_file(path, "t", "l", [0, 1])
    path.write_text('{"t": "x", "l": "high"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="label 'high' is not a number"):
        read_labelled_file(path, "t", "l")
    path.write_text("\n", encoding="utf-8")
    with pytest.raises(ValueError, match="has no examples"):
        read_labelled_file(path, "t", "l", [0, 1])
    with pytest.raises(ValueError, match="Cannot tell the format"):
        read_labelled_file(tmp_path / "a.txt", "t", "l")


@pytest.fixture(scope="module")
def tiny_preset(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("preset"))
    keras.utils.set_random_seed(0)
    ConvBertBackbone(**SHALLOW).save_to_preset(directory)
    ConvBertTokenizer(vocabulary=VOCAB).save_to_preset(directory)
    return directory


def test_unknown_task_and_missing_preset_are_named(tmp_path, tiny_preset):
    from convbert_keras.data.finetune_data import FinetuneData
    from convbert_keras.data.finetune_data import named_data
    from convbert_keras.training.finetuning import FinetuneConfig
    from convbert_keras.training.finetuning import finetune

    with pytest.raises(ValueError, match="Unknown task 'glue'; expected a GLUE task"):
        named_data("glue")
    data = FinetuneData(
        "classification",
        (["a"], np.array([0])),
        {"validation": (["a"], np.array([0]))},
        2,
        ("accuracy",),
    )
    with pytest.raises(ValueError, match="is not a preset directory"):
        finetune(data, str(tmp_path), FinetuneConfig(preset=str(tmp_path / "nothing")))
    with pytest.raises(ValueError, match="exactly one of `preset`"):
        finetune(data, str(tmp_path), FinetuneConfig())


def test_training_batches_are_in_a_fixed_order_without_tf_data_autotuning(tiny_preset):
    from convbert_keras.data.finetune_data import FinetuneData
    from convbert_keras.training.finetuning import FinetuneConfig
    from convbert_keras.training.finetuning import _build_task
    from convbert_keras.training.finetuning import training_batches

    texts = ["a good film", "a bad film", "good", "bad"]
    data = FinetuneData("classification", (texts, np.array([1, 0, 1, 0])), {}, 2, ("accuracy",))
    model = _build_task(FinetuneConfig(preset=tiny_preset, sequence_length=16), data)
    batches = training_batches(model, data, batch_size=2, seed=0, epochs=2)
    # See `pipeline_options`.
    assert batches.options().autotune.enabled is False and batches.options().deterministic
    labels = [y.numpy().tolist() for _, y in batches]
    assert labels == [y.numpy().tolist() for _, y in batches] and len(labels) == 4


@pytest.mark.parametrize(
    "task", ["cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte", "wnli"]
)
def test_every_glue_task_loads_its_features_splits_and_labels_under_mock_data(task):
    import tensorflow_datasets as tfds

    from convbert_keras.data.finetune_data import named_data
    from convbert_keras.data.glue import GLUE_TASKS

    spec = GLUE_TASKS[task]
    with tfds.testing.mock_data(num_examples=6):
        data = named_data(task)
        assert (data.kind, data.num_classes, data.metrics) == (
            "classification",
            spec.num_classes,
            spec.metrics,
        )
        assert sorted(data.validation) == sorted(spec.validation_splits)
        for dataset in (data.train, *data.validation.values()):
            texts, labels = next(iter(dataset.batch(6)))
            texts = texts if isinstance(texts, tuple) else (texts,)
            assert len(texts) == len(spec.text_keys)
            assert all(t.dtype == tf.string and t.shape == (6,) for t in texts)
            assert labels.dtype == ("float32" if spec.num_classes == 1 else "int32")


# One run per distinct path: a single sentence (Matthews correlation), a pair
# (F1), regression, two validation sets (MNLI), SQuAD with and without
# unanswerable questions. The other GLUE tasks differ from these only in
# their features, checked above.
@pytest.mark.slow
@pytest.mark.parametrize("task", ["cola", "mrpc", "stsb", "mnli", "squad_v1", "squad_v2"])
def test_every_kind_of_task_runs_end_to_end_under_mock_data(tmp_path, tiny_preset, task):
    import tensorflow_datasets as tfds

    from convbert_keras.data.finetune_data import named_data
    from convbert_keras.data.glue import GLUE_TASKS
    from convbert_keras.training.finetuning import FinetuneConfig
    from convbert_keras.training.finetuning import finetune

    with tfds.testing.mock_data(num_examples=6):
        data = named_data(task)
        results = finetune(
            data,
            str(tmp_path / "run"),
            FinetuneConfig(
                preset=tiny_preset,
                epochs=1,
                batch_size=4,
                sequence_length=16 if not task.startswith("squad") else 32,
                jit_compile=False,  # XLA is covered elsewhere; this checks the data paths
            ),
            verbose=0,
        )
    best = results["best"]
    expected_sets = GLUE_TASKS[task].validation_splits if task in GLUE_TASKS else ("validation",)
    assert sorted(k for k in best if k.startswith("validation")) == sorted(expected_sets)
    for scores in (best[s] for s in expected_sets):
        assert set(data.metrics) <= set(scores)
        assert all(np.isfinite(v) for v in scores.values())
    assert os.path.isfile(tmp_path / "run" / "preset" / "config.json")
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert len(saved["epochs"]) == 1


def test_finetune_cli_names_a_label_that_is_not_declared(tmp_path, tiny_preset, capsys):
    # The script's runs on local files (training, records, resumption) are
    # in tests/test_finetuning_runs.py; a bad file stops it before any model.
    from convbert_keras.cli.finetune import main

    for name in ("train", "dev"):
        rows = [{"review": "the movie was good", "sentiment": "pos"}] * 4
        (tmp_path / f"{name}.jsonl").write_text("\n".join(map(json.dumps, rows)), "utf-8")
    arguments = ["--train", str(tmp_path / "train.jsonl"), "--validation"]
    arguments += [str(tmp_path / "dev.jsonl"), "--text-columns", "review", "--label-column"]
    arguments += ["sentiment", "--labels", "neg", "--preset", tiny_preset, "--output"]
    with pytest.raises(SystemExit) as stopped:
        main([*arguments, str(tmp_path / "run")])
    assert stopped.value.code == 2
    assert "label 'pos' is not one of the declared labels ['neg']" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_early_stopping_and_results_json(tmp_path, tiny_preset):
    from convbert_keras.data.finetune_data import FinetuneData
    from convbert_keras.training.finetuning import FinetuneConfig
    from convbert_keras.training.finetuning import finetune

    # Labels unrelated to the text, validated on texts never trained on:
    # validation accuracy cannot keep improving.
    rng = np.random.default_rng(0)
    words = ["the", "movie", "plot", "good", "bad", "film", "acting"]
    texts = list(dict.fromkeys(" ".join(rng.choice(words, 4)) for _ in range(80)))[:48]
    labels = rng.integers(0, 2, len(texts)).astype("int32")
    train, validation = (texts[:32], labels[:32]), (texts[32:], labels[32:])
    assert not set(train[0]) & set(validation[0])
    data = FinetuneData("classification", train, {"validation": validation}, 2, ("accuracy",))
    results = finetune(
        data,
        str(tmp_path / "run"),
        FinetuneConfig(
            preset=tiny_preset,
            epochs=8,
            batch_size=8,
            sequence_length=16,
            patience=1,
            jit_compile=False,
        ),
        verbose=0,
    )
    epochs = results["epochs"]
    scores = [e["validation"]["accuracy"] for e in epochs]
    best = results["best"]
    # Stopped one epoch (the patience) after the best, which no later epoch beat.
    assert 2 <= len(epochs) < 8
    assert epochs[-1]["epoch"] == best["epoch"] + 1
    assert best["score"] == scores[best["epoch"] - 1] == max(scores)
    assert all(score <= best["score"] for score in scores[best["epoch"] :])
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["best"] == best and saved["epochs"] == epochs


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_preset):
    """A 3-epoch run with validation and test sets: its data, settings,
    folder and results."""
    from convbert_keras.data.finetune_data import FinetuneData
    from convbert_keras.training.finetuning import FinetuneConfig
    from convbert_keras.training.finetuning import finetune

    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(["the", "movie", "plot", "good", "bad"], 4)) for _ in range(48)]
    labels = np.array(["good" in t for t in texts], "int32")
    data = FinetuneData(
        "classification",
        (texts[:32], labels[:32]),
        {"validation": (texts[32:40], labels[32:40])},
        2,
        ("accuracy",),
        test={"test": (texts[40:], labels[40:])},
    )
    settings = dict(
        preset=tiny_preset,
        epochs=3,
        batch_size=8,
        learning_rate=5e-3,
        sequence_length=16,
        jit_compile=False,
    )
    output = str(tmp_path_factory.mktemp("finished") / "run")
    return data, settings, output, finetune(data, output, FinetuneConfig(**settings), verbose=0)


@pytest.mark.slow
def test_test_set_is_scored_once_with_the_chosen_epoch(finished_run):
    from convbert_keras.models.convbert_task import load_task
    from convbert_keras.training.finetuning import evaluate_task

    data, _, output, results = finished_run
    # Every epoch reports validation only; the test appears once, for the
    # model kept as the best epoch.
    assert all(set(e) == {"epoch", "loss", "validation"} for e in results["epochs"])
    chosen = load_task(os.path.join(output, "preset"))
    expected = evaluate_task(chosen, data._replace(validation=data.test))
    assert results["test"] == expected
    with open(os.path.join(output, "results.json"), encoding="utf-8") as f:
        assert json.load(f)["test"] == expected


@pytest.mark.slow
def test_a_used_folder_refuses_other_settings_and_a_finished_run_is_reused(finished_run, capsys):
    from convbert_keras.training.finetuning import FinetuneConfig
    from convbert_keras.training.finetuning import finetune

    data, settings, output, first = finished_run
    for change, message in [
        (dict(batch_size=4), "batch_size=8; this one has batch_size=4"),
        (dict(learning_rate=1e-3), "learning_rate=0.005; this one has learning_rate=0.001"),
        (dict(epochs=2), "epochs=3; this one has epochs=2"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            finetune(data, output, FinetuneConfig(**dict(settings, **change)), verbose=0)
    texts, labels = data.train
    other = data._replace(train=(texts[::-1], labels[::-1]))
    with pytest.raises(ValueError, match="task.train_sha256="):
        finetune(other, output, FinetuneConfig(**settings), verbose=0)
    again = finetune(data, output, FinetuneConfig(**settings), verbose=1)
    assert "is complete; nothing to train" in capsys.readouterr().out
    assert again["epochs"] == first["epochs"] and len(first["epochs"]) == 3
    assert again["test"] == first["test"]


class _OptimizerMade(Exception):
    """Stops a run as soon as it has made its optimizer."""


@pytest.mark.slow
def test_readme_defaults_layer_decay_warmup_and_clipping(tmp_path, tiny_preset, monkeypatch):
    from convbert_keras.data import finetune_data
    from convbert_keras.training import finetuning
    from convbert_keras.training.finetuning import FinetuneConfig

    # README: layer-wise decay 0.8, 10% warmup, clipping at norm 1, as
    # `finetune` makes its optimizer when none of them is given.
    real, made = finetuning.adamw, []

    def spy(schedule, *args, **kwargs):
        made.append((schedule, real(schedule, *args, **kwargs)))
        raise _OptimizerMade

    monkeypatch.setattr(finetuning, "adamw", spy)
    texts = ["the movie was good", "the plot was bad"] * 10
    labels = np.array([1, 0] * 10, "int32")
    data = finetune_data.FinetuneData(
        "classification", (texts, labels), {"validation": (texts, labels)}, 2, ("accuracy",)
    )
    with pytest.raises(_OptimizerMade):
        finetuning.finetune(
            data,
            str(tmp_path / "run"),
            FinetuneConfig(
                preset=tiny_preset,
                epochs=2,
                batch_size=4,
                sequence_length=16,
                jit_compile=False,
            ),
            verbose=0,
        )
    ((schedule, optimizer),) = made
    assert optimizer.layer_decay == 0.8
    assert (schedule.total_steps, schedule.warmup_steps) == (10, 1)  # 10% of 2 x 20 / 4 steps
    assert optimizer.global_clipnorm == 1.0 and optimizer.epsilon == 1e-6
