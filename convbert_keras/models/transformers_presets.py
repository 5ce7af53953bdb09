import inspect

import numpy as np
from keras_hub.models import Backbone
from keras_hub.models import Preprocessor
from keras_hub.models import Task

from convbert_keras._compat import preset_file_exists
from convbert_keras._compat import preset_json

# Functions `preset -> checkpoint or None` that recognise the presets
# keras-hub cannot read. `convbert_keras.convert` registers transformers'
# on import, so the models never import the converters.
_CHECKPOINT_READERS = []


def register_checkpoint_reader(reader):
    """Lets `from_preset` load the presets `reader` recognises.

    `reader(preset)` returns a checkpoint object (with `backbone`, `task`,
    `preprocessor` and `tokenizer` methods, as
    `convbert_keras.convert.ReferenceCheckpoint`), or `None` for a preset it
    does not read. Registering the same reader twice has no effect."""
    if reader not in _CHECKPOINT_READERS:
        _CHECKPOINT_READERS.append(reader)
    return reader


def _read_checkpoint(preset):
    for reader in _CHECKPOINT_READERS:
        checkpoint = reader(preset)
        if checkpoint is not None:
            return checkpoint
    return None


def extend_rows(table, length):
    """`table` cut to its first `length` rows, or tiled to `length` rows
    (the rule of `resize_positions`)."""
    table = np.asarray(table)
    copies = -(-length // len(table))
    return np.tile(table, (copies, 1))[:length]


class TransformersPresets:
    """Lets `from_preset` load transformers ConvBERT checkpoints, as
    keras-hub's own families load transformers BERTs.

    Besides keras-hub presets, `preset` may be a Hugging Face Hub handle
    (`"hf://YituTech/conv-bert-base"`, fetched into huggingface_hub's cache,
    or found there offline) or a directory written by transformers'
    `save_pretrained`. The checkpoint is converted as it loads, by the
    converter of `convert_checkpoint`; nothing is written.

    - A backbone takes the encoder; `kwargs` override its arguments. A
      longer `max_sequence_length` than the checkpoint's extends its
      position embeddings by copying the learned ones (Longformer's rule,
      `convbert_keras.convert.reference_checkpoint.resize_positions`); a
      shorter one keeps the first.
    - A task takes the checkpoint's head when the checkpoint was saved from
      the task's transformers class (`ConvBertForSequenceClassification`
      for `ConvBertTextClassifier`) and no `num_classes` is given, as
      keras-hub does; otherwise the head is new. Its preprocessor has the
      task's defaults for the checkpoint's positions.
    - A preprocessor or tokenizer takes `vocab.txt`, with the casing of
      `tokenizer_config.json`.

    A keras-hub preset of a backbone takes another `max_sequence_length`
    by the same rule.

    Place it first among the bases: `class ConvBertBackbone(TransformersPresets,
    Backbone)`.

    Example:
    <!-- docs-test: skip, downloads from the Hugging Face Hub -->
    ```python
    classifier = ConvBertTextClassifier.from_preset(
        "hf://YituTech/conv-bert-base", num_classes=2
    )
    ```
    """

    @classmethod
    def from_preset(cls, preset, *args, **kwargs):
        checkpoint = _read_checkpoint(preset)
        if checkpoint is None:
            if issubclass(cls, Backbone) and "max_sequence_length" in kwargs:
                return cls._resized_preset(preset, *args, **kwargs)
            if issubclass(cls, (Task, Preprocessor)) and not preset_file_exists(
                preset, "preprocessor.json"
            ):
                kwargs = cls._fitted_preprocessor(preset, kwargs)
            return super().from_preset(preset, *args, **kwargs)
        if issubclass(cls, (Backbone, Task)):
            load_weights = kwargs.pop("load_weights", args[0] if args else True)
            if issubclass(cls, Backbone):
                return checkpoint.backbone(cls, load_weights, **kwargs)
            head = False if "num_classes" in kwargs else None
            return checkpoint.task(cls, load_weights, head=head, **kwargs)
        # `config_file` names a keras-hub file, which a checkpoint lacks.
        kwargs.pop("config_file", None)
        if issubclass(cls, Preprocessor):
            return checkpoint.preprocessor(cls, **kwargs)
        return checkpoint.tokenizer(cls, **kwargs)

    @classmethod
    def _fitted_preprocessor(cls, preset, kwargs):
        """`kwargs` with a preprocessor that fits the preset's positions.

        A keras-hub preset saved without a preprocessor (a backbone and its
        tokenizer: what `convert_checkpoint` and pretraining write) gets
        keras-hub's default preprocessor, of 512 tokens whatever the
        backbone's positions. A task takes the preprocessor defaults it
        gives a converted checkpoint of that many positions; a preprocessor
        its default length cut to them, with what scales with it
        (`length_defaults`)."""
        config = preset_json(preset, "config.json")
        positions = config.get("config", {}).get("max_sequence_length")
        if positions is None:
            return kwargs
        if issubclass(cls, Task):
            if "preprocessor" in kwargs or cls.preprocessor_cls is None:
                return kwargs
            preprocessor = cls.preprocessor_cls.from_preset(
                preset, **cls.checkpoint_preprocessor_defaults(positions)
            )
            return {**kwargs, "preprocessor": preprocessor}
        default = inspect.signature(cls).parameters.get("sequence_length")
        if "sequence_length" in kwargs or default is None or default.default is None:
            return kwargs
        return {**cls.length_defaults(min(default.default, positions)), **kwargs}

    @classmethod
    def length_defaults(cls, sequence_length):
        """A preprocessor's arguments for inputs of `sequence_length` tokens
        (those that scale with it, as a question answerer's windows)."""
        return {"sequence_length": sequence_length}

    @classmethod
    def _resized_preset(cls, preset, *args, max_sequence_length, **kwargs):
        """A keras-hub preset's backbone with `max_sequence_length`
        positions: loaded as saved, then copied into a backbone of the new
        length, its position table resized by `extend_rows`."""
        saved = super().from_preset(preset, *args, **kwargs)
        if saved.max_sequence_length == max_sequence_length:
            return saved
        resized = cls.from_config(dict(saved.get_config(), max_sequence_length=max_sequence_length))
        positions = saved.position_embedding.weights[0].path
        for variable, value in zip(resized.weights, saved.weights, strict=True):
            if variable.path != value.path:
                raise RuntimeError(
                    f"Resizing {preset!r}: weight {value.path} does not line up with "
                    f"{variable.path}."
                )
            value = value.numpy()
            variable.assign(
                extend_rows(value, max_sequence_length) if variable.path == positions else value
            )
        return resized
