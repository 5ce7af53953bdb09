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
from convbert_keras.models.masked_lm import ConvBertMaskedLM
from convbert_keras.models.masked_lm_preprocessor import ConvBertMaskedLMPreprocessor
from convbert_keras.models.question_answerer import ConvBertQuestionAnswerer
from convbert_keras.models.question_answerer_preprocessor import (
    ConvBertQuestionAnswererPreprocessor,
)
from convbert_keras.models.text_classifier import ConvBertTextClassifier
from convbert_keras.models.text_classifier_preprocessor import ConvBertTextClassifierPreprocessor
from convbert_keras.models.token_classifier import ConvBertTokenClassifier
from convbert_keras.models.token_classifier_preprocessor import ConvBertTokenClassifierPreprocessor
from convbert_keras.models.tokenizer import ConvBertTokenizer

SOURCES = ("hf", "tf1")

# transformers architecture -> (task, our class, its preprocessor class)
TASKS = {
    "ConvBertModel": ("backbone", None, None),
    "ConvBertForSequenceClassification": (
        "text_classifier",
        ConvBertTextClassifier,
        ConvBertTextClassifierPreprocessor,
    ),
    "ConvBertForTokenClassification": (
        "token_classifier",
        ConvBertTokenClassifier,
        ConvBertTokenClassifierPreprocessor,
    ),
    "ConvBertForMaskedLM": ("masked_lm", ConvBertMaskedLM, ConvBertMaskedLMPreprocessor),
    "ConvBertForQuestionAnswering": (
        "question_answerer",
        ConvBertQuestionAnswerer,
        ConvBertQuestionAnswererPreprocessor,
    ),
}


def _task_of(config):
    """The task named by a config.json's `architectures` (default backbone)."""
    architectures = config.get("architectures") or ["ConvBertModel"]
    if architectures[0] not in TASKS:
        raise ValueError(
            f"Architecture {architectures[0]} has no ConvBERT task here; "
            f"supported: {sorted(TASKS)}. Pass task='backbone' to convert "
            "the encoder alone."
        )
    return architectures[0]


def _num_labels(config):
    if "id2label" in config:
        return len(config["id2label"])
    return config.get("num_labels", 2)


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
            transformers architecture name from `TASKS`, whose head is
            converted too.

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
        architecture = _task_of(hf_config)
    elif task == "backbone":
        architecture = "ConvBertModel"
    elif task in TASKS:
        architecture = task
    else:
        raise ValueError(
            f"Unknown task {task!r}; expected 'auto', 'backbone' or one of {sorted(TASKS)}."
        )
    _, task_cls, preprocessor_cls = TASKS[architecture]

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
            preprocessor_kwargs = {"sequence_length": backbone.max_sequence_length}
            if task_cls is ConvBertQuestionAnswerer:
                # SQuAD's defaults, shrunk for models with short positions.
                length = min(384, backbone.max_sequence_length)
                preprocessor_kwargs = {
                    "sequence_length": length,
                    "max_query_length": min(64, length // 4),
                    "doc_stride": min(128, length // 3),
                }
            preprocessor = preprocessor_cls(tokenizer, **preprocessor_kwargs)
        task_kwargs = {}
        if task_cls is ConvBertMaskedLM:
            # transformers' default, and that of every published ConvBERT.
            task_kwargs["tie_word_embeddings"] = hf_config.get("tie_word_embeddings", True)
        elif task_cls is not ConvBertQuestionAnswerer:
            task_kwargs["num_classes"] = _num_labels(hf_config)
        model = task_cls(backbone, preprocessor=preprocessor, **task_kwargs)
        load_weights_into_task(model, state, source=where)
    if output_dir is not None:
        model.save_to_preset(output_dir)
        if task_cls is None and tokenizer is not None:
            tokenizer.save_to_preset(output_dir)
    return model
