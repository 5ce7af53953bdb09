"""Lists the variables that the original ConvBERT code creates.

Builds the pretraining graph of yitu-opensource/ConvBert (`run_pretraining.
PretrainingModel` plus `model.optimization.create_optimizer`, as its
`model_fn` does for training) for the configs of the tiny fixtures and prints
every global variable (what its Saver writes to a checkpoint) as
`name<TAB>shape<TAB>dtype`, one section per fixture. The output is
`tests/fixtures/tf1_original_names.txt`, against which the TF1 converter
is tested.

The original needs TF 1.15; this runs it in graph mode in the side
environment of `make fixtures` (TF 2.21 with tf-keras), from a checkout:
    git clone https://github.com/yitu-opensource/ConvBert /tmp/ConvBert
    .venv-tf-h5/bin/python scripts/list_tf1_original_variables.py /tmp/ConvBert \\
        > tests/fixtures/tf1_original_names.txt
"""

import argparse
import json
import os
import subprocess
import sys
import types

# The original's `tf.layers` calls need the Keras 2 layers of tf-keras.
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow.compat.v1 as tf  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
SECTIONS = ("tiny", "tiny_grouped")


def layer_norm(inputs, begin_norm_axis=-1, begin_params_axis=-1, scope=None, reuse=None):
    """Stands in for TF 1.15's `tf.contrib.layers.layer_norm`, gone from TF 2.

    Creates the variables contrib does, `beta` and `gamma` of shape
    `inputs.shape[begin_params_axis:]` under the scope `scope` or, by
    default, `LayerNorm`; only their names and shapes matter here.
    """
    with tf.variable_scope(scope, "LayerNorm", [inputs], reuse=reuse):
        inputs = tf.convert_to_tensor(inputs)
        shape = inputs.shape[begin_params_axis:]
        beta = tf.get_variable("beta", shape=shape, initializer=tf.zeros_initializer())
        gamma = tf.get_variable("gamma", shape=shape, initializer=tf.ones_initializer())
        mean, variance = tf.nn.moments(inputs, [begin_norm_axis], keepdims=True)
        return tf.nn.batch_normalization(inputs, mean, variance, beta, gamma, 1e-12)


def import_original(checkout):
    """Imports the original's `run_pretraining` with TF 1.15-only names stubbed."""
    contrib = types.ModuleType("tensorflow.contrib")
    contrib.layers = types.ModuleType("tensorflow.contrib.layers")
    contrib.layers.layer_norm = layer_norm
    sys.modules["tensorflow.contrib"] = contrib
    sys.modules["tensorflow.contrib.layers"] = contrib.layers
    # util/training_utils.py subclasses tf.estimator.SessionRunHook on import.
    tf.estimator = types.SimpleNamespace(SessionRunHook=tf.train.SessionRunHook)
    sys.path.insert(0, checkout)
    import configure_pretraining
    import run_pretraining
    from model import optimization

    return configure_pretraining, run_pretraining, optimization


def pretraining_kwargs(config):
    """`PretrainingConfig` arguments whose discriminator is the fixture's model.

    `model_size` only picks defaults that the other arguments override; the
    generator keeps the original's defaults (a quarter of the hidden size).
    """
    return {
        "model_size": "small",
        "vocab_size": config["vocab_size"],
        "embedding_size": config["embedding_size"],
        "conv_kernel_size": config["conv_kernel_size"],
        "linear_groups": config["num_groups"],
        "head_ratio": config["head_ratio"],
        "max_seq_length": 16,
        "model_hparam_overrides": {
            "hidden_size": config["hidden_size"],
            "num_hidden_layers": config["num_hidden_layers"],
            "num_attention_heads": config["num_attention_heads"],
            "intermediate_size": config["intermediate_size"],
            "max_position_embeddings": config["max_position_embeddings"],
            "type_vocab_size": config["type_vocab_size"],
        },
    }


def list_variables(modules, fixture):
    """`(name, shape, dtype)` of every global variable of the training graph."""
    configure_pretraining, run_pretraining, optimization = modules
    directory = os.path.join(FIXTURES, fixture)
    with open(os.path.join(directory, "config.json")) as f:
        kwargs = pretraining_kwargs(json.load(f))
    # The masking reads `<data_dir>/vocab.txt` for the ids of [CLS], [SEP], [MASK].
    config = configure_pretraining.PretrainingConfig(fixture, directory, **kwargs)
    with tf.Graph().as_default():
        shape = [2, config.max_seq_length]
        features = {
            "input_ids": tf.fill(shape, 5),
            "input_mask": tf.ones(shape, tf.int32),
            "segment_ids": tf.zeros(shape, tf.int32),
        }
        model = run_pretraining.PretrainingModel(config, features, is_training=True)
        optimization.create_optimizer(
            model.total_loss,
            config.learning_rate,
            config.num_train_steps,
            weight_decay_rate=config.weight_decay_rate,
            warmup_steps=config.num_warmup_steps,
            lr_decay_power=config.lr_decay_power,
        )
        return [
            (v.op.name, tuple(v.shape.as_list()), v.dtype.base_dtype.name)
            for v in tf.global_variables()
        ], kwargs


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("checkout", help="a checkout of yitu-opensource/ConvBert")
    args = parser.parse_args()
    commit = (
        subprocess.run(
            ["git", "-C", args.checkout, "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        or "unknown"
    )
    tf.disable_eager_execution()
    modules = import_original(args.checkout)
    print(
        "# Variables of the original ConvBERT's pretraining graph: what its Saver\n"
        "# writes to a checkpoint. Written by scripts/list_tf1_original_variables.py,\n"
        "# which builds run_pretraining.PretrainingModel and model/optimization.py's\n"
        "# create_optimizer of github.com/yitu-opensource/ConvBert at\n"
        f"# {commit}\n"
        "# in TF 2 graph mode (contrib's layer_norm stubbed with its variable names:\n"
        "# <scope or LayerNorm>/beta, /gamma) for the configs of\n"
        "# tests/fixtures/<section>/config.json. The names are made by, at that commit:\n"
        "#   model/modeling.py 363-406: electra/embeddings/{word,token_type,position}_embeddings,\n"
        "#     LayerNorm (612-615, 686-705, 563-566); <scope>/embeddings_project when E != H\n"
        "#   model/modeling.py 1149-1221: encoder/layer_N/attention/{self,output},\n"
        "#     intermediate, output; dense, or GDense (41-137, 181-210) as g_dense with\n"
        "#     kernel (groups, in/groups, out/groups) when linear_groups > 1\n"
        "#   model/modeling.py 903-967: attention/self/{query,key,value,conv_attn_key,\n"
        "#     conv_attn_kernel,conv_attn_point}\n"
        "#   run_pretraining.py 42-73, 129-186, 241-252: generator/ (a quarter of the\n"
        "#     hidden size, embeddings shared), generator_predictions/,\n"
        "#     discriminator_predictions/\n"
        "#   model/optimization.py 22, 85-98: global_step, <variable>/adam_m, /adam_v\n"
        "# name<TAB>shape (comma-separated, empty for a scalar)<TAB>dtype"
    )
    for fixture in SECTIONS:
        variables, kwargs = list_variables(modules, fixture)
        print(f"\n[{fixture}]")
        print(f"# PretrainingConfig(**{json.dumps(kwargs, sort_keys=True)})")
        for name, shape, dtype in variables:
            print(f"{name}\t{','.join(map(str, shape))}\t{dtype}")


if __name__ == "__main__":
    main()
