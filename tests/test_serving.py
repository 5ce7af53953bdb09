"""The serving client (`convbert_keras.export.client`, `scripts/serve_client.py`)
against an in-process stand-in for TF Serving (tests/serving_standin.py) that
runs the export: REST and gRPC answer what the Keras model predicts."""

import json

import numpy as np
import pytest
import tensorflow as tf
from serving_standin import ModelServer
from support import keras_logits
from support import sentiment_classifier

from convbert_keras.distribute import free_local_ports
from convbert_keras.export import export_for_tf_serving
from convbert_keras.export.client import ServingError
from convbert_keras.export.client import predict_grpc
from convbert_keras.export.client import predict_rest

pytestmark = pytest.mark.slow

LABELS = ["neg", "pos"]
TEXTS = ["the movie was good.", "a bad plot!", "", "café ☕ great film"]
INVALID = b"\xff\xfe bad \xc3"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A classifier, its version 1 on the stand-in, and the servers' addresses."""
    model = sentiment_classifier()
    base = tmp_path_factory.mktemp("serving")
    version_dir = export_for_tf_serving(model, "sentiment", base_dir=str(base), label_names=LABELS)
    server = ModelServer(str(base))
    rest, grpc = server.start()
    yield model, rest, grpc, version_dir
    server.stop()


def keras_probabilities(model, texts):
    return tf.nn.softmax(keras_logits(model, tf.constant(texts))).numpy()


def test_rest_and_grpc_answer_what_the_keras_model_predicts(served):
    model, rest, grpc, _ = served
    expected = keras_probabilities(model, TEXTS + [INVALID])
    for outputs in (
        predict_rest(rest, "sentiment", {"text": TEXTS + [INVALID]}),
        predict_grpc(grpc, "sentiment", {"text": TEXTS + [INVALID]}),
    ):
        assert sorted(outputs) == ["label", "label_name", "probabilities"]
        np.testing.assert_allclose(outputs["probabilities"], expected, atol=1e-5)
        assert outputs["label"].tolist() == expected.argmax(-1).tolist()
        # Strings come back as `str` over both protocols.
        assert outputs["label_name"].tolist() == [LABELS[i] for i in expected.argmax(-1)]
    # A batch of no texts is a batch of no answers, over both protocols.
    for empty in (
        predict_rest(rest, "sentiment", {"text": []}),
        predict_grpc(grpc, "sentiment", {"text": []}),
    ):
        assert len(empty["probabilities"]) == 0 and len(empty["label_name"]) == 0


def test_a_single_output_signature_and_a_pinned_version(served):
    model, rest, grpc, _ = served
    ids = {k: np.asarray(v).tolist() for k, v in model.preprocessor(TEXTS).items()}
    expected = keras_logits(model, TEXTS)
    for outputs in (
        # TF Serving's REST answer leaves out the name of a single output;
        # the client takes it from the model's metadata.
        predict_rest(rest, "sentiment", ids, "predict_token_ids", version=1),
        predict_grpc(grpc, "sentiment", ids, "predict_token_ids", version=1),
    ):
        assert list(outputs) == ["logits"]
        np.testing.assert_allclose(outputs["logits"], expected, atol=1e-5)
    pair = predict_rest(
        rest, "sentiment", {"text_a": TEXTS[:2], "text_b": TEXTS[2:]}, "classify_pair"
    )
    np.testing.assert_allclose(
        pair["probabilities"],
        tf.nn.softmax(keras_logits(model, (TEXTS[:2], TEXTS[2:]))).numpy(),
        atol=1e-5,
    )


def test_the_server_refusal_or_absence_is_named(served):
    _, rest, grpc, _ = served
    text = {"text": ["good"]}
    with pytest.raises(ServingError, match=r"answered 404: Servable not found.*Specific"):
        predict_rest(rest, "sentiment", text, version=2)
    with pytest.raises(ServingError, match=r"answered NOT_FOUND: Servable not found.*Latest"):
        predict_grpc(grpc, "sentimnet", text)
    with pytest.raises(ServingError, match=r"answered 400: .*\"classify\" not found"):
        predict_rest(rest, "sentiment", text, "classify")
    with pytest.raises(ServingError, match="answered INVALID_ARGUMENT: Inputs \\['txt'\\]"):
        predict_grpc(grpc, "sentiment", {"txt": ["good"]})
    (port,) = free_local_ports(1)
    with pytest.raises(ServingError, match=f"No model server answered at http://127.0.0.1:{port}"):
        predict_rest(f"http://127.0.0.1:{port}", "sentiment", text)
    with pytest.raises(ServingError, match=f"No model server answered at 127.0.0.1:{port}"):
        predict_grpc(f"127.0.0.1:{port}", "sentiment", text, timeout=5)


def test_the_client_script_prints_the_outputs_and_exits_1_on_a_refusal(served, capsys):
    from convbert_keras.cli.serve_client import main

    model, rest, grpc, _ = served
    expected = keras_probabilities(model, TEXTS[:2])
    for server in (["--rest", rest], ["--grpc", grpc]):
        main([*server, "--model", "sentiment", *TEXTS[:2]])
        printed = json.loads(capsys.readouterr().out)
        np.testing.assert_allclose(printed["probabilities"], expected, atol=1e-5)
        assert printed["label_name"] == [LABELS[i] for i in expected.argmax(-1)]
    main(
        ["--rest", rest, "--model", "sentiment", "--signature", "classify_pair"]
        + ["--input", "text_a=good", "--input", "text_b=bad plot"]
    )
    assert len(json.loads(capsys.readouterr().out)["probabilities"]) == 1
    with pytest.raises(SystemExit) as stopped:
        main(["--rest", rest, "--model", "sentiment", "--version", "7", "good"])
    assert stopped.value.code == 1
    assert "Servable not found" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stopped:
        main(["--rest", rest, "--model", "sentiment", "--input", "text_a=good", "--input", "x"])
    assert stopped.value.code == 2
    assert "--input takes NAME=VALUE; got 'x'" in capsys.readouterr().err


def test_the_serving_benchmark_times_the_export_as_the_server_loads_it(served, tmp_path, capsys):
    from convbert_keras.cli.benchmark import main
    from convbert_keras.lab.serving_benchmark import load_signature
    from convbert_keras.lab.serving_benchmark import measure_serving

    model, _, _, version_dir = served
    # The session path it times gives the Keras model's answers.
    session, feeds, fetches = load_signature(version_dir)
    probabilities = session.run(fetches["probabilities"], {feeds["text"]: TEXTS})
    np.testing.assert_allclose(probabilities, keras_probabilities(model, TEXTS), atol=1e-5)
    result = measure_serving(version_dir, TEXTS, requests=20, batch_size=8, batches=3)
    assert 0 < result["p50_ms"] <= result["p99_ms"] and result["texts_per_s"] > 0
    assert (result["requests"], result["batch_size"]) == (20, 8)
    with pytest.raises(ValueError, match=r"takes \['text_a', 'text_b'\], not 'text'"):
        measure_serving(version_dir, TEXTS, signature_name="classify_pair")
    with pytest.raises(ValueError, match=r"has no signature 'classify'"):
        measure_serving(version_dir, TEXTS, signature_name="classify")
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS), encoding="utf-8")
    main(
        ["--serving", version_dir, "--texts", str(texts), "--requests", "10"]
        + ["--output", str(tmp_path / "out")]
    )
    recorded = json.loads((tmp_path / "out" / "serving.json").read_text())
    assert recorded["requests"] == 10 and recorded["export"] == version_dir
    assert f"p50 {recorded['p50_ms']} ms" in capsys.readouterr().out
    # A signature the export lacks: the message, exit status 2, nothing written.
    with pytest.raises(SystemExit) as stopped:
        main(
            ["--serving", version_dir, "--texts", str(texts), "--signature", "classify"]
            + ["--output", str(tmp_path / "refused")]
        )
    assert stopped.value.code == 2
    assert "has no signature 'classify'" in capsys.readouterr().err
    assert not (tmp_path / "refused").exists()
