"""An in-process stand-in for TF Serving, to test clients without Docker.

It serves the SavedModels of a TF Serving model folder (`<base>/<name>/<version>/`)
through the two APIs clients use, as the model server documents them:
REST (`POST /v1/models/<name>[/versions/<v>]:predict`, columnar `inputs`
or row `instances`, binary strings as `{"b64": ...}`, a single output
without its name; `GET .../metadata`) and gRPC (`PredictionService/Predict`,
NOT_FOUND for an unknown model or version, INVALID_ARGUMENT for a bad
input). Signatures run as TF Serving runs them: loaded with TensorFlow and
the tf-text ops, no Keras.
"""

import base64
import json
import os
import re
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer

import numpy as np

_PATH = re.compile(r"^/v1/models/([^/:]+)(?:/versions/(\d+))?(:predict|/metadata)$")


class NotFound(LookupError):
    pass


class ModelServer:
    """`start()` returns `(rest_url, grpc_target)`; `stop()` ends both."""

    def __init__(self, base_dir):
        self.base_dir = base_dir
        self._loaded = {}
        self._lock = threading.Lock()

    def model(self, name, version=None):
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (registers the tf-text ops)

        folder = os.path.join(self.base_dir, name)
        versions = (
            sorted(int(v) for v in os.listdir(folder) if v.isdigit())
            if (os.path.isdir(folder))
            else []
        )
        version = versions[-1] if version is None and versions else version
        if version not in versions:
            wanted = "Latest" if version is None else f"Specific({name}, {version})"
            raise NotFound(f"Servable not found for request: {wanted}({name})")
        with self._lock:
            key = (name, version)
            if key not in self._loaded:
                self._loaded[key] = tf.saved_model.load(os.path.join(folder, str(version)))
            return self._loaded[key]

    def predict(self, name, version, signature_name, inputs):
        import tensorflow as tf

        model = self.model(name, version)
        if signature_name not in model.signatures:
            raise ValueError(f'Serving signature name: "{signature_name}" not found')
        function = model.signatures[signature_name]
        specs = function.structured_input_signature[1]
        if set(inputs) != set(specs):
            raise ValueError(f"Inputs {sorted(inputs)} do not match {sorted(specs)}")
        tensors = {
            k: tf.constant(_array(v, specs[k].dtype), specs[k].dtype) for k, v in inputs.items()
        }
        return {k: v.numpy() for k, v in function(**tensors).items()}

    def output_names(self, name, version, signature_name):
        function = self.model(name, version).signatures[signature_name]
        return sorted(function.structured_outputs)

    def start(self, rest_port=0, grpc_port=0):
        """Ports 0 take free ones; TF Serving's own are 8501 (REST) and 8500."""
        self._http = ThreadingHTTPServer(("127.0.0.1", rest_port), _rest_handler(self))
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        self._grpc = _grpc_server(self)
        port = self._grpc.add_insecure_port(f"127.0.0.1:{grpc_port}")
        self._grpc.start()
        return f"http://127.0.0.1:{self._http.server_port}", f"127.0.0.1:{port}"

    def stop(self):
        self._http.shutdown()
        self._http.server_close()
        self._grpc.stop(None)


def _array(values, dtype):
    import tensorflow as tf

    if dtype != tf.string:
        return np.asarray(values)

    # JSON gives `str`, binary strings (b64) and gRPC give `bytes`.
    def encoded(value):
        if isinstance(value, (list, tuple, np.ndarray)):
            return [encoded(v) for v in value]
        return value.encode("utf-8") if isinstance(value, str) else value

    return np.array(encoded(values), dtype=object)


def _from_json(value):
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


def _to_json(array):
    if array.dtype == object:
        return np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(array).tolist()
    return array.tolist()


def _rest_handler(server):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _reply(self, code, body):
            data = json.dumps(body).encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _route(self, action):
            match = _PATH.match(self.path)
            if not match or match.group(3) != action:
                self._reply(404, {"error": f"Malformed request: {self.command} {self.path}"})
                return None
            return match.group(1), None if match.group(2) is None else int(match.group(2))

        def do_GET(self):
            route = self._route("/metadata")
            if route is None:
                return
            try:
                model = server.model(*route)
            except NotFound as error:
                self._reply(404, {"error": str(error)})
                return
            signatures = {
                name: {"outputs": {k: {} for k in function.structured_outputs}}
                for name, function in model.signatures.items()
            }
            self._reply(200, {"metadata": {"signature_def": {"signature_def": signatures}}})

        def do_POST(self):
            route = self._route(":predict")
            if route is None:
                return
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            signature = body.get("signature_name", "serving_default")
            rows = "instances" in body
            if rows:
                instances = body["instances"]
                keys = instances[0].keys() if instances else ()
                inputs = {k: [_from_json(row[k]) for row in instances] for k in keys}
            else:
                inputs = {k: _from_json(v) for k, v in body["inputs"].items()}
            try:
                outputs = server.predict(*route, signature, inputs)
            except NotFound as error:
                self._reply(404, {"error": str(error)})
                return
            except Exception as error:  # the server's 400: the request's fault
                self._reply(400, {"error": str(error).strip().splitlines()[0]})
                return
            outputs = {k: _to_json(v) for k, v in outputs.items()}
            if rows:
                count = len(next(iter(outputs.values())))
                predictions = [{k: v[i] for k, v in outputs.items()} for i in range(count)]
                if len(outputs) == 1:
                    predictions = [next(iter(p.values())) for p in predictions]
                self._reply(200, {"predictions": predictions})
            else:
                single = len(outputs) == 1
                self._reply(200, {"outputs": next(iter(outputs.values())) if single else outputs})

    return Handler


def _grpc_server(server):
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            spec = request.model_spec
            version = spec.version.value if spec.HasField("version") else None
            inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            try:
                outputs = server.predict(
                    spec.name, version, spec.signature_name or "serving_default", inputs
                )
            except NotFound as error:
                context.abort(grpc.StatusCode.NOT_FOUND, str(error))
            except Exception as error:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error).strip().splitlines()[0])
            response = predict_pb2.PredictResponse()
            response.model_spec.CopyFrom(spec)
            for k, v in outputs.items():
                response.outputs[k].CopyFrom(tf.make_tensor_proto(v))
            return response

    grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Servicer(), grpc_server)
    return grpc_server
