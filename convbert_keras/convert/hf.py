"""Reads Hugging Face ConvBERT checkpoints: directories and `hf://` handles.

A directory written by `save_pretrained`: `config.json` and one of
`model.safetensors`, `pytorch_model.bin` (each possibly sharded, with an
`.index.json`) or `tf_model.h5`; `vocab.txt` and `tokenizer_config.json`
when the tokenizer was saved. Reading needs neither torch nor transformers;
`hf://ORG/NAME` handles need `huggingface_hub`, which fetches the same files
into its cache (or finds them there, offline).
"""

import json
import os

import h5py
import numpy as np

from convbert_keras.convert.reference_checkpoint import ReferenceCheckpoint
from convbert_keras.convert.torch_pickle import load_torch_state_dict
from convbert_keras.convert.weights import tf_layout_to_torch
from convbert_keras.convert.weights import tf_name_to_hf
from convbert_keras.models.transformers_presets import register_checkpoint_reader

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "tf_model.h5")
TOKENIZER_FILES = ("vocab.txt", "tokenizer_config.json")
HF_PREFIX = "hf://"

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


def is_hub_handle(path):
    """Whether `path` names a Hugging Face Hub repository (`hf://ORG/NAME`)."""
    return isinstance(path, str) and path.startswith(HF_PREFIX)


def hub_file(handle, filename, required=True):
    """The local path of `filename` in the Hub repository `handle`, fetched
    into huggingface_hub's cache unless it is there. A file the repository
    (or, offline, the cache) lacks raises `FileNotFoundError`, or gives
    `None` when not `required`."""
    try:
        import huggingface_hub
        from huggingface_hub import constants
        from huggingface_hub import errors
    except ImportError:
        raise ImportError(
            f"Loading {handle} needs huggingface_hub: pip install huggingface_hub"
        ) from None
    try:
        return huggingface_hub.hf_hub_download(repo_id=handle[len(HF_PREFIX) :], filename=filename)
    except errors.LocalEntryNotFoundError:
        # Offline (or the Hub unreachable), and not in the cache.
        if not required:
            return None
        raise FileNotFoundError(
            f"{filename} of {handle} is not in huggingface_hub's cache "
            f"({constants.HF_HUB_CACHE}) and the Hub could not be "
            "reached. Fetch it once online, or point HF_HUB_CACHE at a cache that "
            "holds it."
        ) from None
    except errors.EntryNotFoundError:
        if not required:
            return None
        raise FileNotFoundError(f"{handle} has no {filename}.") from None
    except errors.HFValidationError:
        raise ValueError(
            f"{handle} is not a Hugging Face handle; expected hf://ORG/NAME, "
            "e.g. hf://YituTech/conv-bert-base."
        ) from None
    except OSError as error:  # not found, gated, offline, HTTP errors
        raise FileNotFoundError(
            f"Could not fetch {filename} of {handle}: {type(error).__name__}: {error}"
        ) from None


def _fetch_weights(handle):
    # The first format the repository has, in `read_hf_weights`' order.
    for filename in WEIGHT_FILES:
        if hub_file(handle, filename, required=False):
            return
        index = hub_file(handle, filename + ".index.json", required=False)
        if index:
            for shard in sorted(set(read_json(index)["weight_map"].values())):
                hub_file(handle, shard)
            return
    raise FileNotFoundError(
        f"{handle} has no weights: expected one of {list(WEIGHT_FILES)} (or a sharded .index.json)."
    )


def tokenizer_arguments(directory):
    """`ConvBertTokenizer` arguments from a `tokenizer_config.json` in
    `directory` (casing and accents); `{}`, the published uncased rules,
    without one."""
    path = os.path.join(directory, "tokenizer_config.json")
    if not os.path.exists(path):
        return {}
    config = read_json(path)
    if config.get("tokenize_chinese_chars", True) is False:
        raise ValueError(
            f"{path} turns off tokenize_chinese_chars; ConvBertTokenizer always "
            "splits CJK characters, as every published ConvBERT was trained."
        )
    return {
        "lowercase": config.get("do_lower_case", True),
        "strip_accents": config.get("strip_accents"),
    }


@register_checkpoint_reader
def transformers_checkpoint(preset):
    """`preset` read as a `ReferenceCheckpoint` if it is a transformers
    checkpoint (an `hf://` handle or a directory whose `config.json` has a
    `model_type`); `None` for keras-hub presets and anything else."""
    if isinstance(preset, os.PathLike):
        preset = os.fspath(preset)
    if is_hub_handle(preset):
        config_path = hub_file(preset, "config.json")
    elif isinstance(preset, str) and os.path.isfile(os.path.join(preset, "config.json")):
        config_path = os.path.join(preset, "config.json")
    else:
        return None
    config = read_json(config_path)
    # keras-hub's own test: a serialized Keras object names its class.
    if "registered_name" in config or "model_type" not in config:
        return None
    return read_hf_checkpoint(preset)


def read_hf_checkpoint(path):
    """Reads a `save_pretrained` directory, or an `hf://ORG/NAME` handle.

    Returns a `ReferenceCheckpoint`. The config is read and validated here;
    the weights when a model first needs them (for a handle, fetched then).
    """
    path = os.fspath(path)
    if is_hub_handle(path):
        config_path = hub_file(path, "config.json")
        directory = os.path.dirname(config_path)
        for filename in TOKENIZER_FILES:
            hub_file(path, filename, required=False)
    else:
        directory = path
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

    def read_state():
        if is_hub_handle(path):
            _fetch_weights(path)
        state, weights_path = read_hf_weights(directory)
        return {name: np.asarray(value) for name, value in state.items()}, weights_path

    vocab = os.path.join(directory, "vocab.txt")
    return ReferenceCheckpoint(
        kwargs,
        source=path,
        read_state=read_state,
        hf_config=config,
        vocabulary=vocab if os.path.exists(vocab) else None,
        tokenizer_arguments=tokenizer_arguments(directory),
    )
