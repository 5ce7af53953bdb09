import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf
from support import NEGATIVE
from support import POSITIVE
from support import backbone
from support import sentiment_classifier
from support import tokenizer
from support import train_step_traces

from convbert_keras import ConvBertMaskedLM
from convbert_keras import ConvBertMaskedLMPreprocessor
from convbert_keras import ConvBertTextClassifier
from convbert_keras import ConvBertTextClassifierPreprocessor
from convbert_keras import ConvBertTokenClassifier
from convbert_keras import ConvBertTokenClassifierPreprocessor
from convbert_keras import ConvBertTokenizer

# Training data is repeated within an epoch: a few epochs of 80 examples
# each, as a small task trains, rather than many epochs of 8.
REPEAT = 10


@pytest.mark.slow
def test_text_classifier_fits_raw_strings_with_xla_tracing_its_step_once():
    model = sentiment_classifier()
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    assert model.jit_compile is True
    x = POSITIVE + NEGATIVE
    y = np.array([1] * 4 + [0] * 4)
    traces, history = train_step_traces(
        model, x=x * REPEAT, y=np.tile(y, REPEAT), batch_size=4, epochs=5, verbose=0
    )
    # Keras' own model traces twice: it builds the optimizer in the first
    # trace, and TensorFlow traces again after a trace created variables.
    inputs = keras.Input((3,))
    plain = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    plain.compile(optimizer="adam", loss="mse", jit_compile=True)
    assert train_step_traces(plain, np.ones((4, 3)), np.ones((4, 2)), verbose=0)[0] == 2
    assert traces == 1
    assert history.history["loss"][-1] < 0.2
    predictions = model.predict(x, batch_size=4, verbose=0).argmax(-1)
    np.testing.assert_array_equal(predictions, y)


@pytest.mark.slow
def test_in_memory_inputs_start_one_preprocessing_pipeline_a_call_with_the_same_results():
    from unittest import mock

    from keras_hub.src.utils import pipeline_model

    from convbert_keras.models.traced_preprocessing import EAGER_PREDICT_BATCHES

    x = POSITIVE + NEGATIVE
    y = np.array([1] * 4 + [0] * 4)
    models = []
    for _ in range(2):
        keras.utils.set_random_seed(0)  # the same weights and dropout streams
        models.append(sentiment_classifier())
        models[-1].compile(optimizer=keras.optimizers.Adam(3e-3))
    # Started iterators of keras-hub's preprocessing pipelines: each start
    # instantiates the preprocessing graph.
    pipelines, started = [], []
    apply, start = pipeline_model._apply_preprocessing, tf.data.Dataset.__iter__

    def applied(*args):
        pipelines.append(apply(*args))
        return pipelines[-1]

    def counted(dataset):
        started.extend(p for p in pipelines if p is dataset)
        return start(dataset)

    with (
        mock.patch.object(pipeline_model, "_apply_preprocessing", applied),
        mock.patch.object(tf.data.Dataset, "__iter__", counted),
    ):
        fits = [
            model.fit(
                x * 2,
                np.tile(y, 2),
                batch_size=4,
                epochs=epochs,
                validation_data=(x, y),
                verbose=0,
            ).history
            for model, epochs in [(models[0], 3)] + [(models[1], 1)] * 3
        ]
        # One for training a fit, one for validation an epoch (Keras resets
        # its evaluation iterator for each): 1 + 3 in one fit of 3 epochs,
        # 3 x (1 + 1) in 3 fits.
        assert len(started) == 4 + 6
        evaluated = models[0].evaluate(x, y, batch_size=4, verbose=0, return_dict=True)
        assert len(started) == 10 + 1
        # A few batches are preprocessed eagerly, more in one pipeline.
        predicted = models[0].predict(x, batch_size=4, verbose=0)
        assert len(started) == 11
        many = x * (2 * EAGER_PREDICT_BATCHES)
        streamed = models[0].predict(many, batch_size=4, verbose=0)
        assert len(started) == 11 + 1
        # keras-hub's own path, for a dataset given as it is: two a pass.
        given = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
        given_predicted = models[0].predict(given.map(lambda x, y: x), verbose=0)
        assert len(started) == 12 + 2
    # Ours run without tf.data's autotuning (see `pipeline_options`); a
    # dataset given as it is keeps its own options.
    assert [p.options().autotune.enabled for p in pipelines[:-1]] == [False] * (len(pipelines) - 1)
    assert pipelines[-1].options().autotune.enabled is not False
    for key in ("loss", "val_loss"):
        assert fits[0][key] == [h[key][0] for h in fits[1:]]
    for a, b in zip(models[0].get_weights(), models[1].get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(predicted, given_predicted)
    np.testing.assert_array_equal(streamed, np.tile(predicted, (2 * EAGER_PREDICT_BATCHES, 1)))
    assert evaluated == models[0].evaluate(given, verbose=0, return_dict=True)
    assert evaluated["loss"] == fits[0]["val_loss"][-1]


def test_text_classifier_pairs_and_truncation():
    preprocessor = ConvBertTextClassifierPreprocessor(tokenizer(), sequence_length=8)
    x = preprocessor(x=(tf.constant(["the film"]), tf.constant(["good good good good good good"])))
    # [CLS] the film [SEP] good good good [SEP]: waterfall trims the second segment.
    np.testing.assert_array_equal(x["token_ids"][0], [2, 5, 17, 3, 18, 18, 18, 3])
    np.testing.assert_array_equal(x["segment_ids"][0], [0, 0, 0, 0, 1, 1, 1, 1])
    assert preprocessor.truncate == "waterfall"


@pytest.mark.slow
def test_text_classifier_regression():
    model = sentiment_classifier(num_classes=1)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    assert isinstance(model.loss, keras.losses.MeanSquaredError)
    x = POSITIVE + NEGATIVE
    y = np.array([4.5] * 4 + [0.5] * 4, "float32")
    history = model.fit(x=x * REPEAT, y=np.tile(y, REPEAT), batch_size=4, epochs=6, verbose=0)
    # Well below the squared error of predicting the mean (the variance, 4).
    assert history.history["loss"][-1] < 0.2 * np.var(y)
    assert model.predict(["a great film"], verbose=0).shape == (1, 1)


def test_text_classifier_rejects_labels_out_of_range():
    model = sentiment_classifier()
    with pytest.raises(
        tf.errors.InvalidArgumentError, match=r"Labels must be integers in \[0, 2\)"
    ):
        model.fit(x=POSITIVE, y=np.array([0, 1, 2, 1]), batch_size=4, epochs=1, verbose=0)


@pytest.mark.slow
def test_text_classifier_save_load_and_presets(tmp_path):
    model = sentiment_classifier()
    x = ["the movie was good", "bad film"]
    expected = model.predict(x, verbose=0)
    path = str(tmp_path / "classifier.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, ConvBertTextClassifier)
    np.testing.assert_allclose(restored.predict(x, verbose=0), expected, atol=1e-5)
    model.save_to_preset(str(tmp_path / "preset"))
    for loader in (ConvBertTextClassifier, keras_hub.models.TextClassifier):
        loaded = loader.from_preset(str(tmp_path / "preset"))
        assert isinstance(loaded, ConvBertTextClassifier)
        np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, atol=1e-5)


def test_preprocessing_is_traced_once_and_a_changed_setting_gets_its_own_trace():
    model = sentiment_classifier()
    first = model.predict(POSITIVE, verbose=0)
    traces = model.__dict__["_kept_traces"]
    np.testing.assert_allclose(model.predict(POSITIVE, verbose=0), first, atol=1e-6)
    assert len(traces) == 1

    def mapped_token_ids():
        batches = (
            tf.data.Dataset.from_tensor_slices(POSITIVE).batch(4).map(model.preprocess_samples)
        )
        return next(iter(batches))["token_ids"].numpy()

    np.testing.assert_array_equal(mapped_token_ids(), model.preprocessor(POSITIVE)["token_ids"])
    # Not a stale trace: 6 tokens now, as the preprocessor computes eagerly.
    model.preprocessor.sequence_length = 6
    np.testing.assert_array_equal(mapped_token_ids(), model.preprocessor(POSITIVE)["token_ids"])
    assert mapped_token_ids().shape == (4, 6) and len(traces) == 2
    expected = model(model.preprocessor(tf.constant(POSITIVE))).numpy()
    np.testing.assert_allclose(model.predict(POSITIVE, verbose=0), expected, atol=1e-5)


def test_empty_and_whitespace_strings_get_a_defined_prediction():
    model = sentiment_classifier()
    out = model.predict(["", "   ", "\t\n"], verbose=0)
    assert out.shape == (3, 2) and np.isfinite(out).all()


@pytest.mark.slow
def test_masked_lm_preprocessor_and_fit(tmp_path):
    preprocessor = ConvBertMaskedLMPreprocessor(
        tokenizer(), sequence_length=12, mask_selection_rate=0.5, mask_selection_length=4
    )
    x, y, weights = preprocessor(tf.constant(["the movie was good"]))
    assert x["mask_positions"].shape == (1, 4) and y.shape == (1, 4)
    masked = x["token_ids"].numpy()[0][x["mask_positions"].numpy()[0][weights.numpy()[0] > 0]]
    # Selected positions hold [MASK], a random token or the original one.
    assert len(masked) >= 1
    model = ConvBertMaskedLM(backbone(), preprocessor=preprocessor)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    assert model.jit_compile is True
    history = model.fit(
        x=["the movie was good", "a great film"] * 32, batch_size=4, epochs=2, verbose=0
    )
    assert history.history["loss"][-1] < history.history["loss"][0]
    # The head is tied to the word embeddings.
    assert model.masked_lm_head.token_embedding is model.backbone.token_embedding
    model.save_to_preset(str(tmp_path))
    assert isinstance(keras_hub.models.MaskedLM.from_preset(str(tmp_path)), ConvBertMaskedLM)


def test_token_classifier_preprocessor_aligns_first_pieces():
    preprocessor = ConvBertTokenClassifierPreprocessor(tokenizer(), sequence_length=8)
    words = tf.ragged.constant([["the", "films", "!"]])
    labels = tf.ragged.constant([[1, 2, 0]])
    x, y, w = preprocessor(words, labels)
    # [CLS] the film ##s ! [SEP] [PAD] [PAD]
    np.testing.assert_array_equal(x["token_ids"][0], [2, 5, 17, 30, 35, 3, 0, 0])
    np.testing.assert_array_equal(w[0], [0, 1, 1, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(y[0] * tf.cast(w[0], "int32"), [0, 1, 2, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(
        preprocessor.first_piece_mask(words)[0],
        [False, True, True, False, True, False, False, False],
    )


@pytest.mark.slow
def test_token_classifier_learns_and_tags_words():
    preprocessor = ConvBertTokenClassifierPreprocessor(tokenizer(), sequence_length=12)
    model = ConvBertTokenClassifier(backbone(), num_classes=3, preprocessor=preprocessor)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    # Tag 1 on "movie"/"film(s)", 2 on "actor", 0 elsewhere.
    sentences = [
        ["the", "movie", "was", "good"],
        ["a", "great", "actor"],
        ["the", "films", "and", "the", "actor"],
        ["good", "film"],
    ]
    tags = [[0, 1, 0, 0], [0, 0, 2], [0, 1, 0, 0, 2], [0, 1]]
    model.fit(
        x=tf.ragged.constant(sentences * REPEAT),
        y=tf.ragged.constant(tags * REPEAT),
        batch_size=4,
        epochs=4,
        verbose=0,
    )
    assert model.predict_words(sentences) == tags


def test_token_classifier_rejects_labels_out_of_range():
    preprocessor = ConvBertTokenClassifierPreprocessor(tokenizer(), sequence_length=8)
    model = ConvBertTokenClassifier(backbone(), num_classes=2, preprocessor=preprocessor)
    with pytest.raises(tf.errors.InvalidArgumentError, match="num_classes=2"):
        model.fit(
            x=tf.ragged.constant([["the", "film"]]),
            y=tf.ragged.constant([[0, 5]]),
            epochs=1,
            verbose=0,
        )


def test_tokenizer_requires_special_tokens(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\nthe\nfilm\n")
    with pytest.raises(ValueError, match=r"Cannot find special token .*in the provided vocabulary"):
        ConvBertTokenizer(vocabulary=str(vocab))


@pytest.mark.slow
def test_multiple_choice_learns_to_pick_the_matching_choice(tmp_path):
    from convbert_keras import ConvBertMultipleChoice
    from convbert_keras import ConvBertMultipleChoicePreprocessor

    preprocessor = ConvBertMultipleChoicePreprocessor(tokenizer(), sequence_length=10)
    x = preprocessor(x=(tf.constant(["the film"]), tf.constant([["good", "bad plot"]])))
    assert x["token_ids"].shape == (1, 2, 10)
    # [CLS] the film [SEP] bad plot [SEP]
    np.testing.assert_array_equal(x["token_ids"][0, 1, :7], [2, 5, 17, 3, 19, 21, 3])
    model = ConvBertMultipleChoice(backbone(), preprocessor=preprocessor)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    # The right choice is the praise, wherever it stands.
    prompts = ["the film was", "the story was", "the plot was", "the actor was"] * 2
    choices = [
        ["good", "bad"],
        ["boring", "great"],
        ["bad", "great"],
        ["good", "boring"],
        ["great", "boring"],
        ["bad", "good"],
        ["boring", "good"],
        ["great", "bad"],
    ]
    answers = np.array([0, 1, 1, 0, 0, 1, 1, 0])
    model.fit(
        x=(prompts * REPEAT, choices * REPEAT),
        y=np.tile(answers, REPEAT),
        batch_size=4,
        epochs=4,
        verbose=0,
    )
    predicted = model.predict((prompts, choices), batch_size=4, verbose=0)
    assert predicted.shape == (8, 2)
    np.testing.assert_array_equal(predicted.argmax(-1), answers)
    path = str(tmp_path / "mc.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(
        restored.predict((prompts, choices), verbose=0), predicted, atol=1e-5
    )


def test_bad_task_arguments_are_named():
    from convbert_keras import ConvBertMultipleChoicePreprocessor
    from convbert_keras.data import fetch
    from convbert_keras.data import load_rotten_tomatoes

    with pytest.raises(ValueError, match="`num_classes` must be a positive integer"):
        ConvBertTextClassifier(backbone(), num_classes=0)
    with pytest.raises(ValueError, match="`num_classes` must be an integer >= 2"):
        ConvBertTokenClassifier(backbone(), num_classes=1)
    with pytest.raises(ValueError, match="predict_words needs a preprocessor"):
        ConvBertTokenClassifier(backbone(), num_classes=2).predict_words([["a"]])
    with pytest.raises(ValueError, match="pass labels only"):
        ConvBertTokenClassifierPreprocessor(tokenizer())(
            tf.ragged.constant([["a"]]),
            tf.ragged.constant([[0]]),
            sample_weight=tf.ragged.constant([[1.0]]),
        )
    with pytest.raises(ValueError, match=r"takes x=\(prompts, choices\)"):
        ConvBertMultipleChoicePreprocessor(tokenizer())(tf.constant(["only prompts"]))
    with pytest.raises(ValueError, match="Unknown data 'imdb'"):
        fetch("imdb")
    with pytest.raises(ValueError, match="`validation_fraction` must be in"):
        load_rotten_tomatoes(validation_fraction=1.5)


def test_masked_lm_under_mixed_precision_gives_float32_logits():
    mixed = backbone(dtype="mixed_bfloat16")
    model = ConvBertMaskedLM(mixed)
    inputs = {
        "token_ids": np.full((2, 8), 5, "int32"),
        "segment_ids": np.zeros((2, 8), "int32"),
        "padding_mask": np.ones((2, 8), "int32"),
        "mask_positions": np.zeros((2, 2), "int32"),
    }
    logits = model(inputs)
    assert logits.dtype == "float32" and np.isfinite(np.asarray(logits)).all()
