"""Exports load and serve like the model server: TensorFlow and the tf-text
ops only, raw strings in.

The exported models are one layer deep: what serving must reproduce does
not depend on depth, and each layer adds to tracing every signature."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from support import backbone
from support import keras_logits
from support import sentiment_classifier
from support import tokenizer

from convbert_keras import ConvBertQuestionAnswerer
from convbert_keras import ConvBertQuestionAnswererPreprocessor
from convbert_keras import ConvBertTokenClassifier
from convbert_keras import ConvBertTokenClassifierPreprocessor
from convbert_keras.export import export_for_tf_serving
from convbert_keras.export import export_saved_model

# Runs in a fresh interpreter, as TF Serving would load the model: TensorFlow
# and the tf-text op library; keras-hub and convbert_keras cannot be imported.
# (`import tensorflow` itself imports Keras when it is installed; the
# SavedModel does not use it.)
SERVER = r"""
import importlib.abc, json, sys


class Refuse(importlib.abc.MetaPathFinder):
    # The model server has neither keras-hub nor this package.
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("keras_hub", "convbert_keras"):
            raise ImportError(f"{name} is not available in the serving process")


sys.meta_path.insert(0, Refuse())
import tensorflow as tf
import tensorflow_text  # registers the tf-text ops, as TF Serving links them
results = []
for path, calls in json.loads(sys.argv[1]):
    model = tf.saved_model.load(path)
    results.append([])
    for signature, inputs in calls:
        fn = model.signatures[signature]
        args = {}
        for k, v in inputs.items():
            if v and isinstance(v[0], list):
                args[k] = tf.constant(v, tf.int32)
            else:
                args[k] = tf.constant([s.encode("latin-1") for s in v], tf.string)
        out = fn(**args)
        results[-1].append({k: v.numpy().tolist() if v.dtype != tf.string else
                            [x.decode("utf-8", "replace") if isinstance(x, bytes) else
                             [y.decode("utf-8", "replace") for y in x]
                             for x in v.numpy().tolist()]
                            for k, v in out.items()})
print(json.dumps({"results": results}))
"""


def as_latin1(inputs):
    """A signature's inputs with every string as latin-1 text: arbitrary
    bytes (invalid UTF-8 included) survive JSON and reach the model as is.
    Token-id rows (lists) pass unchanged."""
    return {
        k: [
            x
            if isinstance(x, list)
            else (x.encode() if isinstance(x, str) else x).decode("latin-1")
            for x in v
        ]
        for k, v in inputs.items()
    }


def serve(*exports):
    """Calls signatures of one or more exports, `(path, [(signature,
    inputs), ...])` each, in one fresh process; returns each export's list
    of outputs."""
    encoded = [
        (str(path), [(signature, as_latin1(inputs)) for signature, inputs in calls])
        for path, calls in exports
    ]
    result = subprocess.run(
        [sys.executable, "-c", SERVER, json.dumps(encoded)],
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])["results"]


TEXTS = ["the movie was good", "a bad film , really bad", "great"]


@pytest.fixture(scope="module")
def classifier_export(tmp_path_factory):
    """A text classifier and its export, read by two tests: one export (the
    slow part) for both."""
    model = sentiment_classifier()
    path = export_saved_model(
        model, tmp_path_factory.mktemp("export") / "export", label_names=["neg", "pos"]
    )
    return model, path


@pytest.mark.slow
def test_classifier_export_serves_raw_strings_like_keras(classifier_export):
    model, path = classifier_export
    expected = tf.nn.softmax(keras_logits(model, TEXTS)).numpy()
    pair_expected = tf.nn.softmax(keras_logits(model, (TEXTS[:2], TEXTS[1:]))).numpy()
    ids = model.preprocessor(TEXTS)
    ids = {k: np.asarray(v).astype("int32").tolist() for k, v in ids.items()}
    long_text = "good " * 20000  # 100,000 characters
    ((batch, alone, odd, empty, pair, by_ids),) = serve(
        (
            path,
            [
                ("serving_default", {"text": TEXTS + [long_text]}),
                ("serving_default", {"text": [TEXTS[2]]}),
                ("serving_default", {"text": ["", b"\xff\xfe bad \xc3"]}),
                ("serving_default", {"text": []}),
                ("classify_pair", {"text_a": TEXTS[:2], "text_b": TEXTS[1:]}),
                ("predict_token_ids", ids),
            ],
        )
    )
    np.testing.assert_allclose(batch["probabilities"][:3], expected, atol=1e-5)
    assert batch["label"][:3] == expected.argmax(-1).tolist()
    assert batch["label_name"][:3] == [["neg", "pos"][i] for i in expected.argmax(-1)]
    # A text's answer does not depend on the rest of its batch.
    np.testing.assert_allclose(alone["probabilities"][0], batch["probabilities"][2], atol=1e-5)
    np.testing.assert_allclose(
        odd["probabilities"][0], tf.nn.softmax(keras_logits(model, [""])).numpy()[0], atol=1e-5
    )
    assert len(odd["label"]) == 2 and empty["probabilities"] == [] and empty["label"] == []
    np.testing.assert_allclose(pair["probabilities"], pair_expected, atol=1e-5)
    np.testing.assert_allclose(by_ids["logits"], keras_logits(model, TEXTS), atol=1e-5)
    # The 100,000-character text and the invalid UTF-8 get Keras' answers;
    # invalid bytes are dropped, so the latter reads as " bad ".
    for served, text in (
        (batch["probabilities"][3], long_text),
        (odd["probabilities"][1], b"\xff\xfe bad \xc3"),
    ):
        keras_answer = tf.nn.softmax(keras_logits(model, tf.constant([text]))).numpy()[0]
        np.testing.assert_allclose(served, keras_answer, atol=1e-5)
    np.testing.assert_allclose(
        odd["probabilities"][1],
        tf.nn.softmax(keras_logits(model, [" bad "])).numpy()[0],
        atol=1e-5,
    )


@pytest.mark.slow
def test_export_has_no_xla_and_saved_model_cli_lists_the_signatures(classifier_export):
    from tensorflow.core.protobuf import saved_model_pb2

    path = classifier_export[1]
    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        saved.ParseFromString(f.read())
    functions = saved.meta_graphs[0].graph_def.library.function
    assert functions
    assert not any(fn.attr["_XlaMustCompile"].b for fn in functions if "_XlaMustCompile" in fn.attr)
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    shown = subprocess.run([cli, "show", "--dir", path, "--all"], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr[-2000:]
    for name in ("serving_default", "classify_pair", "predict_token_ids"):
        assert f"signature_def['{name}']" in shown.stdout


@pytest.mark.slow
def test_token_classifier_and_question_answerer_exports(tmp_path):
    tagger = ConvBertTokenClassifier(
        backbone(),
        num_classes=3,
        preprocessor=ConvBertTokenClassifierPreprocessor(tokenizer(), sequence_length=12),
    )
    answerer = ConvBertQuestionAnswerer(
        backbone(),
        preprocessor=ConvBertQuestionAnswererPreprocessor(
            tokenizer(), sequence_length=24, doc_stride=8, max_query_length=4
        ),
    )
    tags_path = export_saved_model(tagger, tmp_path / "tagger", label_names=["O", "B-X", "I-X"])
    qa_path = export_saved_model(answerer, tmp_path / "qa")
    sentences = ["the movie was good", "hello", ""]
    questions = ["what was good ?", "x", ""]
    contexts = ["the movie was GOOD and the plot was bad . " * 3, "", "café"]
    # Both exports in one serving process.
    (tags,), (answers,) = serve(
        (tags_path, [("serving_default", {"text": sentences})]),
        (qa_path, [("serving_default", {"question": questions, "context": contexts})]),
    )
    expected = tagger.predict_words([s.split() for s in sentences])
    assert tags["num_words"] == [4, 1, 0]
    assert [row[:n] for row, n in zip(tags["tags"], tags["num_words"])] == expected
    assert tags["tag_names"][0] == [["O", "B-X", "I-X"][t] for t in expected[0]]
    expected = answerer.answer(questions, contexts)
    assert answers["answer"] == [a["text"] for a in expected]
    assert answers["start"] == [a["start"] for a in expected]
    np.testing.assert_allclose(answers["score"], [a["score"] for a in expected], atol=1e-5)


def _batching_parameters_message():
    """TF Serving's `BatchingParameters`, built from its schema
    (tensorflow_serving/servables/tensorflow/session_bundle_config.proto,
    which tensorflow-serving-api does not ship)."""
    from google.protobuf import descriptor_pb2
    from google.protobuf import descriptor_pool
    from google.protobuf import message_factory
    from google.protobuf import wrappers_pb2

    field = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(
        name="batching_parameters_test.proto",
        package="tensorflow.serving",
        dependency=["google/protobuf/wrappers.proto"],
        syntax="proto3",
    )
    message = proto.message_type.add(name="BatchingParameters")
    for number, name, type_name in [
        (1, "max_batch_size", ".google.protobuf.Int64Value"),
        (2, "batch_timeout_micros", ".google.protobuf.Int64Value"),
        (3, "max_enqueued_batches", ".google.protobuf.Int64Value"),
        (4, "num_batch_threads", ".google.protobuf.Int64Value"),
        (5, "thread_pool_name", ".google.protobuf.StringValue"),
    ]:
        message.field.add(
            name=name,
            number=number,
            type=field.TYPE_MESSAGE,
            type_name=type_name,
            label=field.LABEL_OPTIONAL,
        )
    message.field.add(
        name="allowed_batch_sizes", number=6, type=field.TYPE_INT64, label=field.LABEL_REPEATED
    )
    message.field.add(
        name="pad_variable_length_inputs",
        number=7,
        type=field.TYPE_BOOL,
        label=field.LABEL_OPTIONAL,
    )
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(proto)
    descriptor = pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters")
    return message_factory.GetMessageClass(descriptor)()


@pytest.mark.parametrize(
    "max_batch_size, sizes", [(32, [1, 2, 4, 8, 16, 32]), (24, [1, 2, 4, 8, 16, 24]), (1, [1])]
)
def test_batching_parameters_parse_as_tf_serving_reads_them(tmp_path, max_batch_size, sizes):
    from google.protobuf import text_format

    from convbert_keras.export.tf_serving import write_batching_parameters

    path = write_batching_parameters(tmp_path, max_batch_size=max_batch_size, num_batch_threads=2)
    parameters = text_format.Parse(open(path).read(), _batching_parameters_message())
    # TF Serving's rules: increasing sizes, the last one the maximum.
    assert list(parameters.allowed_batch_sizes) == sizes
    assert parameters.max_batch_size.value == max_batch_size
    assert parameters.num_batch_threads.value == 2
    assert parameters.pad_variable_length_inputs is False
    with pytest.raises(ValueError, match="`max_batch_size` must be positive"):
        write_batching_parameters(tmp_path, max_batch_size=0)


def test_tf_serving_layout_versions_and_warmup(tmp_path):
    from tensorflow_serving.apis import prediction_log_pb2

    model = sentiment_classifier()
    first = export_for_tf_serving(model, "sentiment", base_dir=tmp_path)
    stages = []
    second = export_for_tf_serving(model, "sentiment", base_dir=tmp_path, log=stages.append)
    assert os.path.basename(first) == "1" and os.path.basename(second) == "2"
    # Each stage is told as it starts, with the time spent so far.
    assert [re.sub(r"\(\d+ s\)", "(N s)", line) for line in stages] == [
        "export 1/4: tracing the serving_default signature (N s)",
        "export 2/4: tracing the classify_pair signature (N s)",
        "export 3/4: tracing the predict_token_ids signature (N s)",
        "export 4/4: writing the SavedModel (N s)",
        f"export: warmup requests, then {second}",
    ]
    config = (tmp_path / "models.config").read_text()
    assert "name: 'sentiment'" in config and "base_path: '/models/sentiment'" in config
    records = list(
        tf.data.TFRecordDataset(os.path.join(second, "assets.extra", "tf_serving_warmup_requests"))
    )
    logs = [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in records]
    assert [log.predict_log.request.model_spec.signature_name for log in logs] == [
        "serving_default",
        "classify_pair",
    ]
    assert list(logs[0].predict_log.request.inputs) == ["text"]
    # The batching file is written once; a tuned one survives new versions.
    batching = tmp_path / "batching_parameters.txt"
    assert "max_batch_size { value: 32 }" in batching.read_text()
    batching.write_text("max_batch_size { value: 8 }\n")
    export_for_tf_serving(model, "sentiment", base_dir=tmp_path)
    assert batching.read_text() == "max_batch_size { value: 8 }\n"
    with pytest.raises(ValueError, match="never overwritten"):
        export_for_tf_serving(model, "sentiment", base_dir=tmp_path, version=2)
    with pytest.raises(ValueError, match="may only hold"):
        export_for_tf_serving(model, "my model", base_dir=tmp_path)
    with pytest.raises(ValueError, match="2 label names for 3 classes"):
        export_saved_model(
            sentiment_classifier(num_classes=3),
            tmp_path / "x",
            label_names=["a", "b"],
        )
