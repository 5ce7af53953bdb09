"""Question answering: windows, labels, decoding, training and saving."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from support import backbone
from support import tokenizer

from convbert_keras import ConvBertQuestionAnswerer
from convbert_keras import ConvBertQuestionAnswererPreprocessor
from convbert_keras.models.question_answerer import decode_answers

# Fixture vocabulary ids used below: [CLS]=2 [SEP]=3 the=5 is=8 was=9 it=14
# movie=16 good=18 bad=19 plot=21 .=33 ,=34 ?=36.
QUESTION = "Is it good?"
CONTEXT = "The Movie was GOOD, the plot was bad."
# Word byte spans: The(0,3) Movie(4,9) was(10,13) GOOD(14,18) ,(18,19)
# the(20,23) plot(24,28) was(29,32) bad(33,36) .(36,37)


def preprocessor(**kwargs):
    config = dict(sequence_length=16, doc_stride=3, max_query_length=4)
    config.update(kwargs)
    return ConvBertQuestionAnswererPreprocessor(tokenizer(), **config)


def test_long_context_is_split_into_strided_windows():
    # 4 question pieces leave 16 - 3 - 4 = 9 context pieces per window; the
    # context has 10, so a second window starts doc_stride = 3 pieces in.
    features = preprocessor().windows([QUESTION], [CONTEXT])
    np.testing.assert_array_equal(
        features["token_ids"],
        [
            [2, 8, 14, 18, 36, 3, 5, 16, 9, 18, 34, 5, 21, 9, 19, 3],
            [2, 8, 14, 18, 36, 3, 18, 34, 5, 21, 9, 19, 33, 3, 0, 0],
        ],
    )
    np.testing.assert_array_equal(features["segment_ids"][1], [0] * 6 + [1] * 8 + [0] * 2)
    np.testing.assert_array_equal(features["padding_mask"][1], [True] * 14 + [False] * 2)
    np.testing.assert_array_equal(features["example_index"], [0, 0])
    np.testing.assert_array_equal(features["window_start"], [0, 3])
    np.testing.assert_array_equal(
        features["offsets_begin"][1], [-1] * 6 + [14, 18, 20, 24, 29, 33, 36] + [-1] * 3
    )
    np.testing.assert_array_equal(
        features["offsets_end"][1], [-1] * 6 + [18, 19, 23, 28, 32, 36, 37] + [-1] * 3
    )


def test_eager_calls_reuse_one_trace_and_a_changed_setting_gets_its_own():
    layer = preprocessor()
    first = layer.windows([QUESTION], [CONTEXT])["token_ids"].numpy()
    for batch in (2, 3, 5):
        features = layer.windows([QUESTION] * batch, [CONTEXT] * batch)
        np.testing.assert_array_equal(features["token_ids"].numpy(), np.tile(first, (batch, 1)))
    traces = layer.__dict__["_kept_traces"]
    assert len(traces) == 1
    # Shapes are relaxed after one retrace; four batch sizes need at most two.
    assert next(iter(traces.values())).experimental_get_tracing_count() <= 2
    # Not a stale trace: with stride 9 the second window starts 9 pieces in,
    # as a fresh preprocessor with that setting has it.
    layer.doc_stride = 9
    expected = preprocessor(doc_stride=9).windows([QUESTION], [CONTEXT])["token_ids"].numpy()
    np.testing.assert_array_equal(layer.windows([QUESTION], [CONTEXT])["token_ids"], expected)
    assert len(expected) == 2 and expected[1][6] != first[1][6] and len(traces) == 2


def test_answer_positions_per_window():
    questions = [QUESTION] * 3
    contexts = [CONTEXT] * 3
    starts = [CONTEXT.index("GOOD"), CONTEXT.index("the plot"), -1]
    texts = ["GOOD", "the plot was bad", ""]
    _, positions = preprocessor()(x=(questions, contexts), y=(starts, texts))
    # Per example two windows; a window that does not hold the whole answer,
    # and "no answer", point at [CLS].
    np.testing.assert_array_equal(positions, [[9, 9], [6, 6], [11, 14], [8, 11], [0, 0], [0, 0]])
    # An answer cut by the end of the first window is only in the second.
    _, positions = preprocessor()(x=([QUESTION], [CONTEXT]), y=([CONTEXT.index("bad")], ["bad."]))
    np.testing.assert_array_equal(positions, [[0, 0], [11, 12]])


def packed_windows(question, context, sequence_length=16, doc_stride=3, max_query_length=4):
    """`[CLS] question [SEP] window [SEP]` rows, packed in Python from the
    tokenizer's eager ids: the reference for the preprocessor's graph."""
    words = tokenizer()
    question_ids = list(np.asarray(words(question)))[:max_query_length]
    context_ids = list(np.asarray(words(context)))
    room = sequence_length - 3 - len(question_ids)
    starts = range(0, max(len(context_ids) - room, 0) + doc_stride, doc_stride)
    rows = []
    for start in starts:
        window = context_ids[start : start + room]
        row = [2, *question_ids, 3, *window, 3]
        segments = [0] * (len(question_ids) + 2) + [1] * (len(window) + 1)
        rows.append((row + [0] * (sequence_length - len(row)), segments, start))
        if start + room >= len(context_ids):
            break
    return rows


def test_windows_of_a_mixed_batch_equal_a_python_packing():
    # Questions of every length up to past `max_query_length`, contexts
    # from empty to three windows, in one batch: each row is packed with
    # its own question's length.
    questions = ["", "good", "is it good", "Is it good? Is it bad?", "was the plot bad?"]
    contexts = ["", "the movie", CONTEXT, CONTEXT + " " + CONTEXT, "bad."]
    batch = [(q, c) for q in questions for c in contexts]
    features = preprocessor().windows([q for q, _ in batch], [c for _, c in batch])
    features = {k: np.asarray(v) for k, v in features.items()}
    expected = [(i, w) for i, (q, c) in enumerate(batch) for w in packed_windows(q, c)]
    assert len(features["token_ids"]) == len(expected) > len(batch)
    for row, (example, (ids, segments, start)) in enumerate(expected):
        assert features["example_index"][row] == example
        assert features["window_start"][row] == start
        np.testing.assert_array_equal(features["token_ids"][row], ids)
        segment_ids = segments + [0] * (16 - len(segments))
        np.testing.assert_array_equal(features["segment_ids"][row], segment_ids)
        np.testing.assert_array_equal(features["padding_mask"][row], np.arange(16) < len(segments))
        # Context positions, and only they, carry their word's byte span.
        begin, end = features["offsets_begin"][row], features["offsets_end"][row]
        in_context = np.array(segment_ids, bool) & (np.arange(16) < len(segments) - 1)
        np.testing.assert_array_equal(begin >= 0, in_context)
        assert (end[in_context] > begin[in_context]).all() and (end[~in_context] == -1).all()
        assert (np.diff(begin[in_context]) >= 0).all()


def test_question_is_truncated_and_short_inputs_fit_one_window():
    features = preprocessor(max_query_length=2).windows(
        ["Is it good? Is it bad?", ""], ["", "the movie"]
    )
    np.testing.assert_array_equal(features["token_ids"][0][:5], [2, 8, 14, 3, 3])
    np.testing.assert_array_equal(features["token_ids"][1][:5], [2, 3, 5, 16, 3])
    np.testing.assert_array_equal(features["example_index"], [0, 1])


def test_decoding_picks_the_best_allowed_span_and_maps_to_original_text():
    context = "The café was good, the plot was bad."
    features = {k: v.numpy() for k, v in preprocessor().windows([QUESTION], [context]).items()}
    length = features["token_ids"].shape[1]
    logits = np.zeros((2, 2, length), "float32")
    # Window 1 holds pieces 3..9 at positions 6..12; "plot was bad" is
    # pieces 6..8 (most context there); "café" is one [UNK], window 0 position 7.
    logits[1, 0, 9], logits[1, 1, 11] = 5.0, 5.0
    logits[0, 0, 7], logits[0, 1, 7] = 4.0, 4.0
    answer = decode_answers(logits, features, [context])[0]
    assert answer["text"] == "plot was bad"
    assert context[answer["start"] : answer["end"]] == answer["text"]
    assert answer["score"] == pytest.approx(10.0)
    # Too long for max_answer_length=2: the next best span wins, in the
    # original casing and accents.
    answer = decode_answers(logits, features, [context], max_answer_length=2)[0]
    assert (answer["text"], answer["start"], answer["end"]) == ("café", 4, 8)
    # [CLS] scores above every span: no answer, but only when allowed.
    logits[:, :, 0] = 6.0
    assert decode_answers(logits, features, [context], allow_no_answer=True)[0] == {
        "text": "",
        "score": 12.0,
        "start": -1,
        "end": -1,
    }
    assert decode_answers(logits, features, [context])[0]["text"] == "plot was bad"
    assert (
        decode_answers(logits, features, [context], allow_no_answer=True, null_score_threshold=3.0)[
            0
        ]["text"]
        == "plot was bad"
    )


def test_a_start_counts_only_in_its_max_context_window():
    features = {k: v.numpy() for k, v in preprocessor().windows([QUESTION], [CONTEXT]).items()}
    logits = np.full((2, 2, 16), -10.0, "float32")
    # Piece 8 ("bad") sits at the edge of window 0 (position 14) and in the
    # middle of window 1 (position 11): only window 1 may start there.
    logits[0, 0, 14], logits[0, 1, 14] = 9.0, 9.0
    logits[1, 0, 11], logits[1, 1, 11] = 1.0, 1.0
    answer = decode_answers(logits, features, [CONTEXT])[0]
    assert answer["text"] == "bad" and answer["score"] == pytest.approx(2.0)


NOUNS = ["movie", "plot", "actor", "story", "film", "world"]
ADJECTIVES = ["good", "bad", "great", "funny", "boring"]


def toy_examples(count=40):
    """ "How was it?": the one adjective among nouns, at a random place."""
    rng = np.random.default_rng(0)
    questions, contexts, starts, texts = [], [], [], []
    for _ in range(count):
        words = list(rng.choice(NOUNS, size=rng.integers(3, 8)))
        place = int(rng.integers(0, len(words) + 1))
        adjective = str(rng.choice(ADJECTIVES))
        context = " ".join(words[:place] + [adjective.upper()] + words[place:])
        questions.append("how was it ?")
        contexts.append(context)
        starts.append(len(" ".join(words[:place] + [""])))
        texts.append(adjective.upper())
    return (np.array(questions), np.array(contexts)), (np.array(starts), np.array(texts))


def question_answerer():
    return ConvBertQuestionAnswerer(
        backbone(), preprocessor=preprocessor(sequence_length=24, doc_stride=8)
    )


def test_in_memory_examples_become_windows_without_tf_data_autotuning():
    # See `pipeline_options`; a dataset given as it is keeps its options.
    x, y = toy_examples(4)
    model = question_answerer()
    windows = model._window_dataset(x, y, batch_size=2)
    assert windows.options().autotune.enabled is False
    given = tf.data.Dataset.from_tensor_slices((x, y)).batch(2)
    assert model._window_dataset(given, None, batch_size=2).options().autotune.enabled is not False
    assert sum(int(batch[0]["token_ids"].shape[0]) for batch in windows) >= 4


@pytest.mark.slow
def test_question_answerer_learns_and_answers_with_xla(tmp_path):
    x, y = toy_examples()
    model = question_answerer()
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    assert model.jit_compile is True
    # Repeated within an epoch rather than run for many short epochs (see
    # test_tasks.REPEAT).
    repeated = tuple(tuple(np.tile(a, 4) for a in part) for part in (x, y))
    history = model.fit(x=repeated[0], y=repeated[1], batch_size=8, epochs=3, verbose=0)
    assert history.history["loss"][-1] < 0.1 < history.history["loss"][0]
    answers = model.answer(list(x[0]), list(x[1]))
    assert [a["text"] for a in answers] == list(y[1])
    assert model.evaluate(x=x, y=y, verbose=0, return_dict=True)["position_accuracy"] == 1.0
    assert model.predict(x, verbose=0).shape == (40, 2, 24)

    # `.keras` and preset round trips give the same answers.
    path = str(tmp_path / "qa.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert [a["text"] for a in restored.answer(list(x[0]), list(x[1]))] == list(y[1])
    model.save_to_preset(str(tmp_path / "preset"))
    loaded = ConvBertQuestionAnswerer.from_preset(str(tmp_path / "preset"))
    assert loaded.preprocessor.doc_stride == 8
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


@pytest.mark.slow
def test_question_answerer_accepts_a_dataset_and_odd_text():
    import tensorflow as tf

    x, y = toy_examples()
    model = question_answerer()
    model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(3), epochs=1, verbose=0)
    answers = model.answer(
        ["", "what?", b"\xff\xfe?"],
        ["", "the movie " * 40, b"the \xffmovie was good"],
    )
    assert len(answers) == 3
    assert answers[0] == {"text": "", "score": answers[0]["score"], "start": -1, "end": -1}
    for answer, context in zip(answers[1:], ["the movie " * 40, "the \ufffdmovie was good"]):
        assert context[answer["start"] : answer["end"]] == answer["text"] != ""
    assert model.answer([], []) == []


def test_question_answerer_bad_input_is_named():
    with pytest.raises(ValueError, match="max_query_length"):
        preprocessor(sequence_length=16, max_query_length=14)
    with pytest.raises(ValueError, match="doc_stride"):
        preprocessor(doc_stride=0)
    with pytest.raises(ValueError, match=r"x=\(questions, contexts\)"):
        preprocessor()(["only questions"])
    with pytest.raises(ValueError, match="answer_starts, answer_texts"):
        preprocessor()(x=([QUESTION], [CONTEXT]), y=[3])
    with pytest.raises(ValueError, match="one context per question"):
        question_answerer().answer(["a", "b"], ["c"])
