"""Converts reference checkpoints into keras-hub preset directories."""

import os

from convbert_keras.convert.hf import backbone_kwargs_from_hf_config
from convbert_keras.convert.hf import read_hf_checkpoint
from convbert_keras.convert.hf import read_json
from convbert_keras.convert.tf1 import read_tf1_checkpoint
from convbert_keras.convert.weights import load_weights_into_backbone
from convbert_keras.convert.weights import load_weights_into_task
from convbert_keras.models.backbone import ConvBertBackbone
from convbert_keras.models.configs import convbert_config
from convbert_keras.models.convbert_task import hf_architectures
from convbert_keras.models.convbert_task import task_for_architecture
from convbert_keras.models.tokenizer import ConvBertTokenizer

SOURCES = ("hf", "tf1")
BACKBONE_ARCHITECTURE = "ConvBertModel"


def convert_checkpoint(
    source,
    input_path,
    output_dir=None,
    config=None,
    size=None,
    vocabulary=None,
    task="auto",
):
    """Builds a ConvBERT model holding a reference checkpoint's weights.

    Args:
        source: `"hf"` for a transformers `save_pretrained` directory
            (safetensors, PyTorch `.bin` or TF `.h5` weights) or `"tf1"` for
            a checkpoint of the original TF 1.15 code.
        input_path: the directory (`hf`), or the checkpoint prefix or
            directory (`tf1`).
        output_dir: if given, a keras-hub preset directory is written there
            (backbone, and tokenizer when a vocabulary is known).
        config: `tf1` only: path of the model's JSON config (BERT-style
            fields: hidden_size, embedding_size, num_groups, ...).
        size: `tf1` only, instead of `config`: a published size name.
        vocabulary: path of a `vocab.txt`; defaults to the one in an `hf`
            directory.
        task: `"auto"` (from `architectures` in an `hf` config.json; the
            backbone for `tf1`), `"backbone"` (the encoder alone) or a
            transformers architecture a task declares (`hf_architectures()`),
            whose head is converted too.

    Returns: the backbone, or the task model.
    """
    if source == "hf":
        if config is not None or size is not None:
            raise ValueError(
                "`config` and `size` apply to tf1 checkpoints; a Hugging Face "
                "directory carries its own config.json."
            )
        kwargs, hf_config, state, where, found_vocabulary = read_hf_checkpoint(input_path)
        vocabulary = vocabulary or found_vocabulary
    elif source == "tf1":
        if (config is None) == (size is None):
            raise ValueError(
                "A tf1 checkpoint needs exactly one of `config` (a JSON file) "
                "or `size` (small, medium-small, base)."
            )
        if config is not None:
            kwargs = backbone_kwargs_from_hf_config(read_json(config), config)
        else:
            kwargs = convbert_config(size)
        state = read_tf1_checkpoint(input_path)
        where = str(input_path)
        hf_config = {}
    else:
        raise ValueError(f"Unknown source {source!r}; expected one of {SOURCES}.")

    if task == "auto":
        architecture = (hf_config.get("architectures") or [BACKBONE_ARCHITECTURE])[0]
    elif task == "backbone":
        architecture = BACKBONE_ARCHITECTURE
    elif task in hf_architectures():
        architecture = task
    else:
        raise ValueError(
            f"Unknown task {task!r}; expected 'auto', 'backbone' or one of {hf_architectures()}."
        )
    task_cls = None
    if architecture != BACKBONE_ARCHITECTURE:
        task_cls = task_for_architecture(architecture)

    backbone = ConvBertBackbone(**kwargs)
    tokenizer = None
    if vocabulary is not None:
        tokenizer = ConvBertTokenizer(vocabulary=os.fspath(vocabulary))
        if tokenizer.vocabulary_size() != backbone.vocabulary_size:
            raise ValueError(
                f"The vocabulary {vocabulary} has {tokenizer.vocabulary_size()} "
                f"entries but the model embeds {backbone.vocabulary_size} ids; "
                "pass the vocabulary the checkpoint was trained with."
            )
    if task_cls is None:
        load_weights_into_backbone(backbone, state, source=where)
        model = backbone
    else:
        preprocessor = None
        if tokenizer is not None:
            length = task_cls.checkpoint_sequence_length(backbone.max_sequence_length)
            preprocessor = task_cls.preprocessor_cls(
                tokenizer, **task_cls.preprocessor_defaults(length)
            )
        model = task_cls(
            backbone, preprocessor=preprocessor, **task_cls.arguments_from_hf_config(hf_config)
        )
        load_weights_into_task(model, state, source=where)
    if output_dir is not None:
        model.save_to_preset(output_dir)
        if task_cls is None and tokenizer is not None:
            tokenizer.save_to_preset(output_dir)
    return model
