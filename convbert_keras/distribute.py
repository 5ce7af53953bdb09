"""Training under `tf.distribute`: strategies by name, and XLA-compiled
replica steps under every strategy."""

import contextlib
import os

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def make_strategy(name="default", tpu=None, cpu_devices=None):
    """A `tf.distribute` strategy by name: `default` (one device),
    `mirrored` (all local GPUs; without GPUs, one CPU, or `cpu_devices`
    logical CPU devices), `multi_worker` (cluster from the `TF_CONFIG`
    environment variable), `tpu` (`tpu`: the TPU name or address; empty on
    a TPU VM). Create it before any other TF work.

    `cpu_devices` splits the CPU into that many logical devices, a way to
    run (and test) a multi-replica strategy on a machine without GPUs; they
    share the CPU's cores, so it is not faster."""
    import tensorflow as tf

    if cpu_devices is not None and name != "mirrored":
        raise ValueError("`cpu_devices` goes with the mirrored strategy only.")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if cpu_devices is None:
            return tf.distribute.MirroredStrategy()
        if cpu_devices < 1:
            raise ValueError(f"`cpu_devices` must be positive. Received: {cpu_devices}")
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_devices
        )
        return tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(cpu_devices)])
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "The multi_worker strategy reads the cluster from TF_CONFIG, which "
                "is not set; see the README for a launch example."
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"Unknown strategy {name!r}; expected one of {STRATEGIES}.")


def is_chief(strategy):
    """Whether this process writes the run's files: always, except on the
    non-chief workers of a multi-worker cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def free_local_ports(count):
    """`count` TCP ports free on localhost now: the addresses of a cluster
    of local workers (`TF_CONFIG`), as the tests and benchmarks run one."""
    import socket

    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def replica_row_offset(rows):
    """The index of this replica's first example in the global batch
    (`replica id x rows`; 0 outside a multi-replica step).

    Random draws keyed by (seed, global example index) instead of the
    position in the replica's batch give every example the same masks on
    one device or on many, and different masks on different replicas.
    """
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return 0
    return tf.cast(context.replica_id_in_sync_group, "int32") * tf.cast(rows, "int32")


def sum_over_replicas(value):
    """`value` summed over the replicas of the step (itself on one)."""
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return context.all_reduce(tf.distribute.ReduceOp.SUM, value)


def _multi_replica(strategy):
    return strategy.num_replicas_in_sync > 1


@contextlib.contextmanager
def _without_jit(model):
    model.jit_compile = False
    try:
        yield
    finally:
        model.jit_compile = True


class ReplicaXlaSteps:
    """A `keras.Model` mixin: XLA under every `tf.distribute` strategy.

    Keras compiles a step with XLA only as a whole, cross-replica part
    included, which fails under `MirroredStrategy` and
    `MultiWorkerMirroredStrategy`. With `jit_compile=True` and more than one
    replica, this mixin compiles each replica's forward and backward pass
    (the gradients; for evaluation and prediction, the forward pass) as
    one XLA module, and runs the all-reduce, the optimizer update and the
    metrics outside it. On one device, and on a TPU (which compiles the
    whole step), Keras' own step runs unchanged. `model.fit`, `evaluate`
    and `predict` stay the entry points.

    Place it before the Keras base class:
    `class ConvBertTextClassifier(ReplicaXlaSteps, keras_hub.models.TextClassifier)`.
    """

    def _splits_steps(self):
        import keras
        import tensorflow as tf

        # Other backends distribute through `keras.distribution`, each
        # compiling the whole step (JAX's jit) or none (PyTorch).
        if keras.config.backend() != "tensorflow":
            return False
        strategy = self.distribute_strategy
        # A TPU compiles the whole step itself.
        return (
            bool(self.jit_compile)
            and not self.run_eagerly
            and _multi_replica(strategy)
            and not isinstance(strategy, tf.distribute.TPUStrategy)
        )

    def _replica_gradients(self, x, y, sample_weight):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self._compute_loss(
                x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True
            )
            scaled = self.optimizer.scale_loss(loss)
        return tape.gradient(scaled, self.trainable_weights), loss, y_pred

    def _replica_forward(self, x):
        return self(x, training=False)

    def _track_loss(self, x, loss):
        import tensorflow as tf

        from convbert_keras._compat import loss_tracker
        from convbert_keras._compat import unscale_loss_for_distribution

        # Rows of a batch: the first tensor of rank 2 or more (a rank-1
        # input may be a per-step value such as the pretrainer's totals).
        tensors = [t for t in tf.nest.flatten(x) if t is not None]
        rows = tf.shape(
            next((t for t in tensors if t.shape.rank and t.shape.rank > 1), tensors[0])
        )[0]
        loss_tracker(self).update_state(unscale_loss_for_distribution(loss), sample_weight=rows)

    def train_step(self, *args):
        # JAX's steps are stateless, `(state, data)`; TensorFlow's take `data`.
        if not self._splits_steps():
            return super().train_step(*args)
        (data,) = args
        import keras

        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        gradients, loss, y_pred = self._xla_replica_gradients(x, y, sample_weight)
        self._track_loss(x, loss)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def test_step(self, *args):
        if not self._splits_steps():
            return super().test_step(*args)
        (data,) = args
        import keras

        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        y_pred = self._xla_replica_forward(x)
        loss = self._compute_loss(
            x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=False
        )
        self._track_loss(x, loss)
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def predict_step(self, *args):
        if not self._splits_steps():
            return super().predict_step(*args)
        (data,) = args
        import keras

        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self._xla_replica_forward(x)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras (3.15) builds a model under a strategy by MEAN-reducing its
        # first batch, which fails for MultiWorkerMirroredStrategy batches
        # (one PerReplica holding the whole dict). A model built with a
        # built optimizer (as the training runners leave it) needs no build.
        if self.built and self.optimizer is not None and self.optimizer.built:
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def make_train_function(self, force=False):
        # Keras on TensorFlow without a strategy builds the optimizer inside
        # the first trace of the train step, and a variable created during a
        # trace makes TensorFlow trace the step a second time: a first `fit`
        # paid for two traces. Built here, before the trace, the optimizer
        # gets the same variables (Keras builds it before here under a
        # strategy, and on the other backends). A model with layers still to
        # build (a subclassed one before its first call) has not all its
        # variables yet: Keras' way then.
        import keras

        if (
            keras.config.backend() == "tensorflow"
            and self.optimizer is not None
            and not self.optimizer.built
            and all(layer.built for layer in self._flatten_layers())
        ):
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)
        return self._make_step_function(super().make_train_function, "train_function", force)

    def make_test_function(self, force=False):
        return self._make_step_function(super().make_test_function, "test_function", force)

    def make_predict_function(self, force=False):
        return self._make_step_function(super().make_predict_function, "predict_function", force)

    def _make_step_function(self, make, attribute, force):
        if not self._splits_steps():
            return make(force)
        if getattr(self, attribute) is not None and not force:
            return getattr(self, attribute)
        import tensorflow as tf

        # The cross-replica function is a plain tf.function around
        # `strategy.run`; the replica's share inside it is compiled, anew
        # for each new step function (a recompiled model has a new
        # optimizer).
        if attribute == "train_function":
            self._xla_replica_gradients = tf.function(
                self._replica_gradients, jit_compile=True, reduce_retracing=True
            )
        else:
            self._xla_replica_forward = tf.function(
                self._replica_forward, jit_compile=True, reduce_retracing=True
            )
        with _without_jit(self):
            make(True)
        return getattr(self, attribute)
