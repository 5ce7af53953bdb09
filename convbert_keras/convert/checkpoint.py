"""Converts reference checkpoints into keras-hub preset directories."""

from convbert_keras.convert.hf import backbone_kwargs_from_hf_config
from convbert_keras.convert.hf import read_hf_checkpoint
from convbert_keras.convert.hf import read_json
from convbert_keras.convert.reference_checkpoint import BACKBONE_ARCHITECTURE
from convbert_keras.convert.reference_checkpoint import ReferenceCheckpoint
from convbert_keras.convert.tf1 import read_tf1_checkpoint
from convbert_keras.models.configs import convbert_config
from convbert_keras.models.convbert_task import hf_architectures
from convbert_keras.models.convbert_task import task_for_architecture

SOURCES = ("hf", "tf1")


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
            (safetensors, PyTorch `.bin` or TF `.h5` weights) or an
            `hf://ORG/NAME` handle, or `"tf1"` for a checkpoint of the
            original TF 1.15 code.
        input_path: the directory or handle (`hf`), or the checkpoint
            prefix or directory (`tf1`).
        output_dir: if given, a keras-hub preset directory is written there
            (backbone, and tokenizer when a vocabulary is known).
        config: `tf1` only: path of the model's JSON config (BERT-style
            fields: hidden_size, embedding_size, num_groups, ...).
        size: `tf1` only, instead of `config`: a published size name.
        vocabulary: path of a `vocab.txt`; defaults to the one in an `hf`
            checkpoint (with its `tokenizer_config.json` casing).
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
                "checkpoint carries its own config.json."
            )
        checkpoint = read_hf_checkpoint(input_path)
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
        checkpoint = ReferenceCheckpoint(
            kwargs, source=str(input_path), read_state=lambda: (state, str(input_path))
        )
    else:
        raise ValueError(f"Unknown source {source!r}; expected one of {SOURCES}.")

    if task == "auto":
        architecture = checkpoint.architecture
    elif task == "backbone":
        architecture = BACKBONE_ARCHITECTURE
    elif task in hf_architectures():
        architecture = task
    else:
        raise ValueError(
            f"Unknown task {task!r}; expected 'auto', 'backbone' or one of {hf_architectures()}."
        )
    if vocabulary is not None:
        checkpoint.vocabulary = vocabulary
    if architecture == BACKBONE_ARCHITECTURE:
        # The vocabulary is checked before any weights are read.
        tokenizer = checkpoint.tokenizer() if checkpoint.vocabulary is not None else None
        model = checkpoint.backbone()
    else:
        model = checkpoint.task(task_for_architecture(architecture), head=True)
    if output_dir is not None:
        model.save_to_preset(output_dir)
        if architecture == BACKBONE_ARCHITECTURE and tokenizer is not None:
            tokenizer.save_to_preset(output_dir)
    return model
