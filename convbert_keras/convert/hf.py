"""Reads Hugging Face ConvBERT model directories.

A directory written by `save_pretrained`: `config.json` and one of
`model.safetensors`, `pytorch_model.bin` (each possibly sharded, with an
`.index.json`) or `tf_model.h5`; `vocab.txt` when the tokenizer was saved.
Reading needs neither torch nor transformers.
"""

import collections
import json
import os

import h5py
import numpy as np

from convbert_keras.convert.torch_pickle import load_torch_state_dict
from convbert_keras.convert.weights import tf_layout_to_torch
from convbert_keras.convert.weights import tf_name_to_hf

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "tf_model.h5")

_REQUIRED_FIELDS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
)


def backbone_kwargs_from_hf_config(config, source="config"):
    """Maps a ConvBERT `config.json` dict to `ConvBertBackbone` arguments.

    Also reads the original code's BERT-style JSON configs, which use the
    same field names.
    """
    model_type = config.get("model_type", "convbert")
    if model_type != "convbert":
        raise ValueError(
            f"{source}: model_type is {model_type!r}, not 'convbert'. Only "
            "ConvBERT checkpoints can be converted."
        )
    missing = [field for field in _REQUIRED_FIELDS if field not in config]
    if missing:
        raise ValueError(f"{source} lacks the field(s) {missing}.")
    head_ratio = config.get("head_ratio", 2)
    if head_ratio != 2:
        raise ValueError(
            f"{source}: head_ratio is {head_ratio}, but only head_ratio 2 can "
            "be converted exactly. With another ratio transformers' PyTorch "
            "ConvBERT (>= 4.27) sizes its heads as (hidden // reduced heads) "
            "// 2 while the original code uses hidden // heads, so the "
            "checkpoint's meaning is ambiguous. Every published ConvBERT uses "
            "head_ratio 2."
        )
    activation = config.get("hidden_act", "gelu")
    if activation != "gelu":
        raise ValueError(
            f"{source}: hidden_act is {activation!r}; ConvBertBackbone "
            "implements the exact (erf) 'gelu' of the published models only."
        )
    return {
        "vocabulary_size": config["vocab_size"],
        "num_layers": config["num_hidden_layers"],
        "num_heads": config["num_attention_heads"],
        "hidden_dim": config["hidden_size"],
        "intermediate_dim": config["intermediate_size"],
        "embedding_dim": config.get("embedding_size", config["hidden_size"]),
        "head_ratio": head_ratio,
        "conv_kernel_size": config.get("conv_kernel_size", 9),
        "num_groups": config.get("num_groups", 1),
        "dropout": config.get("hidden_dropout_prob", 0.1),
        "max_sequence_length": config.get("max_position_embeddings", 512),
        "num_segments": config.get("type_vocab_size", 2),
        "layer_norm_epsilon": config.get("layer_norm_eps", 1e-12),
    }


def read_json(path):
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as error:
        raise ValueError(f"Could not read {path} as JSON: {error}") from None


def _read_safetensors(path):
    from safetensors.numpy import load_file

    return load_file(path)


def _read_h5(path):
    state = {}

    def visit(name, item):
        if isinstance(item, h5py.Dataset):
            hf_name = tf_name_to_hf(name)
            if hf_name is not None:
                state[hf_name] = tf_layout_to_torch(hf_name, item[()], "hf_tf")
            else:
                state[name] = item[()]

    with h5py.File(path, "r") as file:
        file.visititems(visit)
    return state


_READERS = {
    "model.safetensors": _read_safetensors,
    "pytorch_model.bin": load_torch_state_dict,
    "tf_model.h5": _read_h5,
}


def _read_file(reader, path):
    try:
        return reader(path)
    except (OSError, ValueError, KeyError, EOFError) as error:
        raise ValueError(f"Could not read weights from {path}: {error}") from None
    except Exception as error:  # safetensors and pickle raise their own types
        raise ValueError(
            f"Could not read weights from {path}: {type(error).__name__}: {error}"
        ) from None


def read_hf_weights(directory):
    """Returns `(state, path)`: the canonical state dict and the file read."""
    for filename in WEIGHT_FILES:
        path = os.path.join(directory, filename)
        index = path + ".index.json"
        if os.path.exists(path):
            return _read_file(_READERS[filename], path), path
        if os.path.exists(index):
            shards = sorted(set(read_json(index)["weight_map"].values()))
            state = {}
            for shard in shards:
                state.update(_read_file(_READERS[filename], os.path.join(directory, shard)))
            return state, index
    raise FileNotFoundError(
        f"No weights in {directory}: expected one of {list(WEIGHT_FILES)} "
        "(or a sharded .index.json)."
    )


HFCheckpoint = collections.namedtuple(
    "HFCheckpoint", ["backbone_kwargs", "config", "state", "weights_path", "vocabulary"]
)


def read_hf_checkpoint(directory):
    """Reads a `save_pretrained` directory.

    Returns an `HFCheckpoint`: the backbone arguments, the raw `config.json`
    dict (architectures, labels), the canonical state dict, the weights file
    read and the `vocab.txt` path (or `None`). The config is validated before
    any weights are read.
    """
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{directory} is not a directory.")
    config_path = os.path.join(directory, "config.json")
    if not os.path.exists(config_path):
        raise FileNotFoundError(
            f"{directory} has no config.json; pass a directory written by "
            "transformers' save_pretrained."
        )
    config = read_json(config_path)
    kwargs = backbone_kwargs_from_hf_config(config, config_path)
    state, weights_path = read_hf_weights(directory)
    state = {name: np.asarray(value) for name, value in state.items()}
    vocab = os.path.join(directory, "vocab.txt")
    return HFCheckpoint(
        kwargs, config, state, weights_path, vocab if os.path.exists(vocab) else None
    )
