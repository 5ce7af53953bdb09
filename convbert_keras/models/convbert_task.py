"""What conversion, fine-tuning and export need to know about a task model,
declared once by the task, and the registry that finds a task by it."""

import json
import os

import keras

from convbert_keras._compat import nested_layers
from convbert_keras.models.transformers_presets import TransformersPresets

_TASKS = []


class ConvBertTask(TransformersPresets):
    """A mixin through which a ConvBERT task model declares itself.

    Conversion, fine-tuning and export read these declarations and never
    branch on a task's type, so a new task is a new class (its file, and its
    line in `convbert_keras.models`) and nothing else. Subclasses set:

    - `hf_architecture`: the transformers class whose checkpoints hold this
      task's head (`"ConvBertForSequenceClassification"`), or `None`;
      `convert_checkpoint` finds the task by it.
    - `data_kind`: the `FinetuneData.kind` that `finetune` builds this task
      for (`"classification"`), or `None`.

    and override the methods below that apply to them. Each class that
    sets either attribute is registered as it is defined.

    Place it first among the bases: `class ConvBertTextClassifier(ConvBertTask,
    TracedPreprocessing, ReplicaXlaSteps, TextClassifier)`.
    """

    hf_architecture = None
    data_kind = None
    # Whether `training_batches` gives preprocessed batches.
    batches_preprocessed = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        declared = {"hf_architecture", "data_kind"} & set(vars(cls))
        if not declared:
            return
        for other in list(_TASKS):
            if other.__qualname__ == cls.__qualname__ and other.__module__ == cls.__module__:
                _TASKS.remove(other)  # the same class defined again (a module reload)
                continue
            for name in declared:
                value = getattr(cls, name)
                if value is not None and value == vars(other).get(name):
                    raise ValueError(
                        f"{cls.__name__} declares {name} {value!r}, which "
                        f"{other.__name__} already declares; each belongs to one task."
                    )
        _TASKS.append(cls)

    def __init__(self, *args, **kwargs):
        # Each task sets `backbone` and `preprocessor` before it builds its
        # functional graph through here: a preprocessor longer than the
        # position table fails later, inside XLA, with no word of either.
        backbone = getattr(self, "backbone", None)
        length = getattr(getattr(self, "preprocessor", None), "sequence_length", None)
        positions = getattr(backbone, "max_sequence_length", None)
        if length is not None and positions is not None and length > positions:
            raise ValueError(
                f"{type(self).__name__}: the preprocessor makes sequences of {length} "
                f"tokens, but the backbone has {positions} positions "
                f"(max_sequence_length). Give the preprocessor sequence_length<={positions} "
                "(`--sequence-length` of convbert-finetune), or the backbone more positions "
                f"(`from_preset(..., max_sequence_length={length})` extends a checkpoint's)."
            )
        super().__init__(*args, **kwargs)

    def _outside_task_weights(self):
        # The backbone's weights have a file of their own; the optimizer's
        # state belongs to a training run (its checkpoints), not to a model:
        # keras-hub would save a compiled task's slots for every weight (twice
        # the model) and every load would throw them away with a warning.
        skipped = nested_layers(self.backbone)
        if getattr(self, "optimizer", None) is not None:
            skipped.append(self.optimizer)
        return skipped

    def save_task_weights(self, filepath):
        """keras-hub's `save_task_weights` (the weights outside the
        backbone, to a `.weights.h5` file), without the optimizer's state."""
        if not str(filepath).endswith(".weights.h5"):
            raise ValueError(
                f"The filename must end in `.weights.h5`. Received: filepath={filepath}"
            )
        keras.saving.save_weights(self, filepath, objects_to_skip=self._outside_task_weights())

    def load_task_weights(self, filepath):
        """keras-hub's `load_task_weights`, leaving this task's optimizer as
        it is (presets saved by keras-hub's own method hold a finished
        run's)."""
        keras.saving.load_weights(self, filepath, objects_to_skip=self._outside_task_weights())

    def compile(self, *args, jit_compile="auto", **kwargs):
        """Keras' `compile`, where `jit_compile="auto"` compiles the steps
        on TensorFlow (with XLA, on CPUs too, unlike Keras' own "auto") and
        on JAX (with `jax.jit`), and runs them eagerly on PyTorch, where
        `torch.compile` recompiles Keras' layers again and again and costs
        more than it saves."""
        import keras

        if jit_compile == "auto":
            jit_compile = keras.config.backend() != "torch"
        super().compile(*args, jit_compile=jit_compile, **kwargs)

    @classmethod
    def preprocessor_defaults(cls, sequence_length):
        """Preprocessor arguments for inputs of `sequence_length` tokens:
        those of its preprocessor class (`length_defaults`)."""
        if cls.preprocessor_cls is None:
            return {"sequence_length": sequence_length}
        return cls.preprocessor_cls.length_defaults(sequence_length)

    @classmethod
    def checkpoint_sequence_length(cls, max_sequence_length):
        """The preprocessor length given to a converted checkpoint of a model
        with `max_sequence_length` positions."""
        return max_sequence_length

    @classmethod
    def checkpoint_preprocessor_defaults(cls, max_sequence_length):
        """Preprocessor arguments for a checkpoint of `max_sequence_length`
        positions that comes without a preprocessor of its own."""
        return cls.preprocessor_defaults(cls.checkpoint_sequence_length(max_sequence_length))

    @classmethod
    def arguments_from_hf_config(cls, hf_config):
        """Constructor arguments read from a transformers `config.json`."""
        return {}

    @classmethod
    def arguments_for_data(cls, data, pooling="cls"):
        """Constructor arguments for fine-tuning on `data` (a `FinetuneData`)."""
        return {}

    def hf_head_weights(self):
        """`(variable, transformers name, PyTorch layout to Keras)` for every
        weight of the head (the backbone's are mapped elsewhere)."""
        raise ValueError(f"{type(self).__name__} has no transformers head to convert.")

    def check_hf_weights(self, state, source):
        """Raises if `state` (transformers names to arrays) holds weights of
        this task that conversion would drop without a word."""

    def serving_signatures(self, label_names=None, max_answer_length=30, allow_no_answer=False):
        """`{name: (function, input specs)}` on raw strings, for export."""
        raise ValueError(
            f"{type(self).__name__} has no raw-string serving signatures; export one of "
            f"{', '.join(sorted(c.__name__ for c in _registered() if _serves(c)))}."
        )

    def warmup_requests(self):
        """`[(signature name, {input: list of strings})]` that TF Serving runs
        before it serves a new version."""
        return []

    def training_batches(self, examples, batch_size):
        """A `tf.data.Dataset` of unbatched raw `(x, y)` training examples
        as batches of `batch_size`; `finetune` maps `preprocess_samples`
        over them unless `batches_preprocessed`."""
        return examples.batch(batch_size)

    def count_training_rows(self, examples, count):
        """How many rows of a batch the `count` raw `examples` give."""
        return count

    def official_scores(self, examples, data, batch_size):
        """The official metrics of one validation or test set of `data`."""
        raise ValueError(f"{type(self).__name__} has no fine-tuning metrics.")


def _declared(task_cls, name):
    # Declared by the class itself: a subclass of a task is not that task.
    return vars(task_cls).get(name)


def _serves(task_cls):
    return task_cls.serving_signatures is not ConvBertTask.serving_signatures


def _registered():
    # Tasks register as their modules are imported; the package imports all.
    import convbert_keras.models  # noqa: F401

    return list(_TASKS)


def hf_architectures():
    """The transformers architectures that a registered task converts."""
    return sorted(filter(None, (_declared(c, "hf_architecture") for c in _registered())))


def task_for_architecture(architecture):
    """The task class that holds checkpoints of a transformers architecture."""
    for task_cls in _registered():
        if _declared(task_cls, "hf_architecture") == architecture:
            return task_cls
    raise ValueError(
        f"Architecture {architecture} has no ConvBERT task here; supported: "
        f"{hf_architectures()}. Pass task='backbone' to convert the encoder alone."
    )


def task_for_preprocessor(preprocessor_cls):
    """The task class whose preprocessor `preprocessor_cls` is (or
    derives from); `ConvBertTask`, with the plain defaults, for none."""
    for task_cls in _registered():
        if task_cls.preprocessor_cls in preprocessor_cls.__mro__:
            return task_cls
    return ConvBertTask


def task_for_data(kind):
    """The task class that `finetune` builds for a `FinetuneData.kind`."""
    for task_cls in _registered():
        if _declared(task_cls, "data_kind") == kind:
            return task_cls
    kinds = sorted(filter(None, (_declared(c, "data_kind") for c in _registered())))
    raise ValueError(f"No task fine-tunes data of kind {kind!r}; expected one of {kinds}.")


def load_task(preset):
    """The task model saved in a preset directory, whatever its class
    (read from the preset's `task.json`)."""
    path = os.path.join(preset, "task.json")
    if not os.path.isfile(path):
        raise ValueError(
            f"{preset} holds no task model (no task.json); export a fine-tuned task preset."
        )
    with open(path, encoding="utf-8") as f:
        registered = json.load(f).get("registered_name")
    _registered()
    task_cls = keras.saving.get_registered_object(registered)
    if task_cls is None:
        raise ValueError(f"{preset} holds a {registered!r}, which is not a ConvBERT task.")
    return task_cls.from_preset(preset)


def hf_num_labels(hf_config):
    """The number of labels a transformers `config.json` declares."""
    if "id2label" in hf_config:
        return len(hf_config["id2label"])
    return hf_config.get("num_labels", 2)


# What TF Serving's warmup requests send to signatures that take text.
WARMUP_TEXTS = ["A warm-up request.", "Another one, a little longer than the first."]


def string_spec(name):
    """A batch of strings as a serving input."""
    import tensorflow as tf

    return tf.TensorSpec([None], tf.string, name=name)
