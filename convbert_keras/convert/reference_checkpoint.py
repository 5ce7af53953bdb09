"""A reference checkpoint, read, and the ConvBERT models built from it."""

import functools
import os

from convbert_keras.convert.weights import load_weights_into_backbone
from convbert_keras.convert.weights import load_weights_into_task
from convbert_keras.convert.weights import strip_model_prefix
from convbert_keras.models.backbone import ConvBertBackbone
from convbert_keras.models.convbert_task import task_for_preprocessor
from convbert_keras.models.tokenizer import ConvBertTokenizer
from convbert_keras.models.transformers_presets import extend_rows

BACKBONE_ARCHITECTURE = "ConvBertModel"
POSITIONS = "embeddings.position_embeddings.weight"


def resize_positions(state, length):
    """`state` with its position embeddings resized to `length` rows.

    Cut to the first `length`; or extended by copying the learned rows in
    order, again and again (Longformer's rule, Beltagy et al. 2020): every
    new position starts as a learned one and neighbours keep their learned
    differences, so the model reads long inputs sensibly from the start
    and is fine-tuned at the new length.
    """
    state = strip_model_prefix(state)
    table = state.get(POSITIONS)
    if table is not None:
        state[POSITIONS] = extend_rows(table, length)
    return state


class ReferenceCheckpoint:
    """A transformers or original-code ConvBERT checkpoint, ready to build
    models from: the backbone, its tokenizer and preprocessors, and task
    models with or without the checkpoint's head.

    Built by `read_hf_checkpoint` (transformers directories and `hf://`
    handles) and by `convert_checkpoint`. The weights are read on first use,
    so a model built with `load_weights=False` needs only the config.

    Args:
        backbone_kwargs: `ConvBertBackbone` arguments.
        source: where the checkpoint is, for messages.
        read_state: a function returning `(state, path)`: the canonical
            (PyTorch-named, PyTorch-layout) state dict and the file read.
        hf_config: the transformers `config.json` dict, or `{}`.
        vocabulary: the path of its `vocab.txt`, or `None`.
        tokenizer_arguments: `ConvBertTokenizer` arguments (casing).

    Example:
    ```python
    checkpoint = read_hf_checkpoint("conv-bert-small/")
    classifier = checkpoint.task(ConvBertTextClassifier, num_classes=2)
    ```
    """

    def __init__(
        self,
        backbone_kwargs,
        source,
        read_state,
        hf_config=None,
        vocabulary=None,
        tokenizer_arguments=None,
    ):
        self.backbone_kwargs = backbone_kwargs
        self.source = source
        self._read_state = read_state
        self.hf_config = hf_config or {}
        self.vocabulary = vocabulary
        self.tokenizer_arguments = tokenizer_arguments or {}

    @functools.cached_property
    def _state_and_path(self):
        return self._read_state()

    def _state_for(self, backbone):
        # A backbone given another `max_sequence_length` than the
        # checkpoint's gets its position embeddings resized.
        state, path = self._state_and_path
        return resize_positions(state, backbone.max_sequence_length), path

    @property
    def architecture(self):
        """The transformers class the checkpoint was saved from."""
        return (self.hf_config.get("architectures") or [BACKBONE_ARCHITECTURE])[0]

    def tokenizer(self, cls=ConvBertTokenizer, vocabulary=None, **kwargs):
        """The tokenizer of the checkpoint's `vocab.txt` (or `vocabulary`),
        checked against the number of ids the model embeds."""
        vocabulary = vocabulary or self.vocabulary
        if vocabulary is None:
            raise ValueError(
                f"{self.source} has no vocab.txt; pass the vocabulary the checkpoint "
                "was trained with (a tokenizer, or `vocabulary=`)."
            )
        tokenizer = cls(vocabulary=os.fspath(vocabulary), **{**self.tokenizer_arguments, **kwargs})
        expected = self.backbone_kwargs["vocabulary_size"]
        if tokenizer.vocabulary_size() != expected:
            raise ValueError(
                f"The vocabulary {vocabulary} has {tokenizer.vocabulary_size()} "
                f"entries but the model embeds {expected} ids; "
                "pass the vocabulary the checkpoint was trained with."
            )
        return tokenizer

    def backbone(self, cls=ConvBertBackbone, load_weights=True, **kwargs):
        """The encoder; `kwargs` override the checkpoint's arguments. A
        `max_sequence_length` other than the checkpoint's resizes its
        position embeddings (`resize_positions`)."""
        backbone = cls(**{**self.backbone_kwargs, **kwargs})
        if load_weights:
            state, path = self._state_for(backbone)
            load_weights_into_backbone(backbone, state, source=path)
        return backbone

    def preprocessor(self, cls, task_cls=None, **kwargs):
        """A preprocessor with `task_cls`'s defaults (by default the task
        that `cls` preprocesses for) for the checkpoint's positions and the
        checkpoint's tokenizer, unless given."""
        if task_cls is None:
            task_cls = task_for_preprocessor(cls)
        positions = self.backbone_kwargs["max_sequence_length"]
        kwargs = {**task_cls.checkpoint_preprocessor_defaults(positions), **kwargs}
        if "tokenizer" not in kwargs:
            kwargs["tokenizer"] = self.tokenizer(cls.tokenizer_cls)
        return cls(**kwargs)

    def holds_head_of(self, task_cls):
        """Whether the checkpoint was saved from `task_cls`'s architecture."""
        declared = [vars(c).get("hf_architecture") for c in task_cls.__mro__]
        return self.architecture in declared

    def task(self, cls, load_weights=True, head=None, **kwargs):
        """A task model of class `cls` on the checkpoint's backbone.

        Args:
            cls: a `ConvBertTask` class (or subclass).
            load_weights: load the checkpoint's weights.
            head: take the head from the checkpoint too (a weight it lacks
                is an error); by default when the checkpoint was saved from
                `cls`'s architecture. Without it the head is new and
                `kwargs` give its arguments (`num_classes`).
            **kwargs: the task's arguments; `backbone` and `preprocessor`
                are built from the checkpoint unless given (no tokenizer
                files: no preprocessor).
        """
        if head is None:
            head = self.holds_head_of(cls)
        if head:
            kwargs = {**cls.arguments_from_hf_config(self.hf_config), **kwargs}
        load_backbone = load_weights and not head and "backbone" not in kwargs
        if "backbone" not in kwargs:
            kwargs["backbone"] = self.backbone(cls.backbone_cls, load_weights=load_backbone)
        if "preprocessor" not in kwargs:
            kwargs["preprocessor"] = None
            if self.vocabulary is not None:
                kwargs["preprocessor"] = self.preprocessor(cls.preprocessor_cls, task_cls=cls)
        try:
            task = cls(**kwargs)
        except TypeError as error:
            if head:
                raise
            raise TypeError(
                f"{cls.__name__}: {error}. {self.source} is a {self.architecture} "
                f"checkpoint without a {cls.__name__} head, so the new head needs "
                "its arguments (e.g. num_classes=2)."
            ) from None
        if head and load_weights:
            state, path = self._state_for(task.backbone)
            load_weights_into_task(task, state, source=path)
        return task
