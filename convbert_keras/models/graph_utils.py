"""Running preprocessing code as TensorFlow graphs, and what our own
preprocessors share."""

import json


def kept_trace(owner, fn, config):
    """A `tf.function` of `fn` that `owner` keeps, one per `config`.

    Tracing a preprocessing function (the tokenizer's normalisation and
    splitting, the windows of a question answerer) takes 0.5-2 s, longer
    than running it on a few texts. A trace kept on the layer or model
    that owns `fn` is reused by every later call with the same `config`
    (the owner's settings, as `get_config()` gives them); a changed
    setting gets a trace of its own, never a stale one. Input shapes are
    relaxed after the first retrace (`reduce_retracing`).
    """
    import tensorflow as tf

    key = (fn.__name__, json.dumps(config, sort_keys=True, default=str))
    # A plain dict set past Keras' attribute tracking: the traces are not
    # part of the owner's state, its saved files or its exports.
    traces = owner.__dict__.setdefault("_kept_traces", {})
    if key not in traces:
        traces[key] = tf.function(fn, reduce_retracing=True)
    return traces[key]


def run_in_graph(method, *args):
    """Calls `method(*args)`, a method of a preprocessing layer, inside a
    graph: directly while tracing, through the layer's `kept_trace` when
    eager.

    keras-hub tokenizers take a pure-Python path when called eagerly and a
    tf-text path only while tracing; preprocessing built on ragged tensors
    needs the latter, also for eager convenience calls.
    """
    import tensorflow as tf

    if tf.executing_eagerly():
        layer = method.__self__
        return kept_trace(layer, method, layer.get_config())(*args)
    return method(*args)


def run_on_one_example(method, *args):
    """`run_in_graph(method, *args)` for one example's tensors (a map over
    unbatched examples gives them): each gets a batch axis of one, which
    every output loses again. The caller decides, where the rank is known:
    inside the kept trace, which relaxes shapes, it may not be."""
    import tensorflow as tf

    batch = tuple(tf.convert_to_tensor(arg)[None] for arg in args)
    return tf.nest.map_structure(lambda t: t[0], run_in_graph(method, *batch))


class PackedSequenceLength:
    """`sequence_length` as keras-hub's preprocessors have it, for a
    preprocessor whose packers (named in `PACKERS`, built in `build`) pad
    to it: a new value applies from the next call on."""

    PACKERS = ("packer",)

    @property
    def sequence_length(self):
        return self._sequence_length

    @sequence_length.setter
    def sequence_length(self, value):
        self._sequence_length = value
        for name in self.PACKERS:
            packer = getattr(self, name, None)
            if packer is not None:
                packer.sequence_length = value
