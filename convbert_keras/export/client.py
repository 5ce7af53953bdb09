"""Clients for a TF Serving model server: REST (port 8501) and gRPC (8500).

Both send one request to a signature of an exported model and return its
outputs as `{name: numpy array}`, strings as `str`, whichever protocol:

    from convbert_keras.export.client import predict_grpc, predict_rest

    predict_rest("http://localhost:8501", "convbert_sentiment", {"text": ["A gripping film."]})
    predict_grpc("localhost:8500", "convbert_sentiment", {"text": ["A gripping film."]})

Inputs are `{input name: list}`, a batch along the first axis: strings
for the raw-text signatures, lists of ints for `predict_token_ids`. A
failure raises `ServingError` with the server's own message, or, when no
server answers, the address tried.
"""

import base64
import json
import urllib.error
import urllib.request

import numpy as np


class ServingError(RuntimeError):
    """A model server refused a request or could not be reached."""


def _model_path(model_name, version):
    path = f"/v1/models/{model_name}"
    return path if version is None else f"{path}/versions/{int(version)}"


def _json_value(value):
    # TF Serving's REST API takes binary strings (not UTF-8) as {"b64": ...}.
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json_value(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _http(url, body=None, timeout=30.0):
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as error:
        text = error.read().decode("utf-8", errors="replace")
        try:
            text = json.loads(text).get("error", text)
        except (ValueError, AttributeError):
            pass
        raise ServingError(f"{url} answered {error.code}: {text}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ServingError(
            f"No model server answered at {url} ({reason}). Start one with the README's "
            "`docker run ... tensorflow/serving` line, or check the address and port (REST "
            "is 8501 by default)."
        ) from None


def _output_names(url, model_path, signature_name, timeout):
    metadata = _http(f"{url}{model_path}/metadata", timeout=timeout)
    signatures = metadata["metadata"]["signature_def"]["signature_def"]
    return sorted(signatures[signature_name]["outputs"])


def predict_rest(
    url, model_name, inputs, signature_name="serving_default", version=None, timeout=30.0
):
    """Calls `signature_name` of `model_name` (its latest version, or
    `version`) through TF Serving's REST API at `url` (e.g.
    `http://localhost:8501`), in its columnar format. Returns `{output
    name: numpy array}`."""
    url = url.rstrip("/")
    model_path = _model_path(model_name, version)
    body = {
        "signature_name": signature_name,
        "inputs": {name: _json_value(list(values)) for name, values in inputs.items()},
    }
    outputs = _http(f"{url}{model_path}:predict", body, timeout)["outputs"]
    if not isinstance(outputs, dict):
        # A signature with one output gets its value alone, without the name.
        (name,) = _output_names(url, model_path, signature_name, timeout)
        outputs = {name: outputs}
    return {name: _array(value) for name, value in outputs.items()}


def _array(value):
    array = np.asarray(value)
    # Strings as `str` objects, as the gRPC client gives them.
    return array.astype(object) if array.dtype.kind == "U" else array


def predict_grpc(
    target, model_name, inputs, signature_name="serving_default", version=None, timeout=30.0
):
    """Calls `signature_name` of `model_name` (its latest version, or
    `version`) through TF Serving's gRPC `PredictionService` at `target`
    (e.g. `localhost:8500`). Returns `{output name: numpy array}`."""
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = int(version)
    for name, values in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(values, dtype=_dtype(values)))
    with grpc.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            response = stub.Predict(request, timeout)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.UNAVAILABLE:
                raise ServingError(
                    f"No model server answered at {target} ({error.details()}). Start one with "
                    "the README's `docker run ... tensorflow/serving` line, or check the "
                    "address and port (gRPC is 8500 by default)."
                ) from None
            raise ServingError(
                f"{target} answered {error.code().name}: {error.details()}"
            ) from None
    return {name: _decoded(tf.make_ndarray(proto)) for name, proto in response.outputs.items()}


def _dtype(values):
    """The tensor type to send: a numeric array's own, else strings unless
    the first value is a number. (An empty list is a batch of no texts.)"""
    import tensorflow as tf

    if isinstance(values, np.ndarray) and values.dtype != object:
        return None if values.dtype.kind in "iuf" else tf.string
    while isinstance(values, (list, tuple, np.ndarray)) and len(values):
        values = values[0]
    return None if isinstance(values, (int, float, np.number)) else tf.string


def _decoded(array):
    if array.dtype == object:
        return np.vectorize(lambda b: b.decode("utf-8", errors="replace"), otypes=[object])(array)
    return array
