"""The executable reference: transformers' PyTorch ConvBERT.

Builds randomly initialised `ConvBertModel`s, saves them as Hugging Face
checkpoints and runs them, so that conversion and parity can be checked, and
speed measured (`convbert_keras.lab.benchmark`), against the public
implementation. Needs `torch` and `transformers` (the `reference` extra);
imported only by the benchmark, the tests and the fixture script.
"""

import numpy as np


def hf_config_kwargs(backbone_kwargs):
    """Maps `ConvBertBackbone` arguments to `transformers.ConvBertConfig`."""
    kwargs = dict(backbone_kwargs)
    hidden_dim = kwargs["hidden_dim"]
    return {
        "vocab_size": kwargs["vocabulary_size"],
        "hidden_size": hidden_dim,
        "embedding_size": kwargs.get("embedding_dim") or hidden_dim,
        "num_hidden_layers": kwargs["num_layers"],
        "num_attention_heads": kwargs["num_heads"],
        "intermediate_size": kwargs["intermediate_dim"],
        "head_ratio": kwargs.get("head_ratio", 2),
        "conv_kernel_size": kwargs.get("conv_kernel_size", 9),
        "num_groups": kwargs.get("num_groups", 1),
        "max_position_embeddings": kwargs.get("max_sequence_length", 512),
        "type_vocab_size": kwargs.get("num_segments", 2),
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
    }


HF_TASK_CLASSES = {
    "backbone": "ConvBertModel",
    "text_classifier": "ConvBertForSequenceClassification",
    "token_classifier": "ConvBertForTokenClassification",
    "masked_lm": "ConvBertForMaskedLM",
    "question_answerer": "ConvBertForQuestionAnswering",
}


def random_hf_model(backbone_kwargs, seed=0, task="backbone", num_labels=2, spread=False):
    """A transformers ConvBERT model (`task` picks the class, see
    `HF_TASK_CLASSES`) whose every weight is random.

    The library's initialiser leaves biases at 0 and LayerNorm at (1, 0);
    perturbing them too makes a parity check see every weight. With
    `spread`, every weight is drawn far from initialisation instead (see
    `spread_weights`).
    """
    import torch
    import transformers

    torch.manual_seed(seed)
    config = transformers.ConvBertConfig(**hf_config_kwargs(backbone_kwargs), num_labels=num_labels)
    model = getattr(transformers, HF_TASK_CLASSES[task])(config).eval()
    if spread:
        spread_weights(model)
        return model
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn_like(param) * 0.05
            param.add_(noise if "LayerNorm" in name or "bias" in name else 0)
    return model


def _fan_in(name, shape):
    if "depthwise" in name:
        return shape[-1]  # (H, 1, K): K taps per channel
    if "pointwise" in name:
        return shape[1]  # (A, H, 1)
    if len(shape) == 3:
        return shape[1]  # GroupedLinear (G, in/G, out/G)
    return shape[-1]  # Linear (out, in)


def spread_weights(model, matrix_scale=1.5, vector_scale=0.2):
    """Redraws every weight of a transformers model far from initialisation.

    Matrices get std `matrix_scale / sqrt(fan_in)`, so each layer keeps
    unit-scale activations but attention scores and the span-based dynamic
    kernels' logits spread over several units: the softmaxes are peaked,
    as in trained models, and every branch moves the output. Embeddings
    get std 1; biases and LayerNorm offsets std `vector_scale`, LayerNorm
    scales 1 plus that much noise. At the library's own initialisation
    (std 0.02) the convolution branch changes a tiny model's output by
    about 5e-7, below any parity tolerance.
    """
    import torch

    with torch.no_grad():
        for name, param in model.named_parameters():
            if "LayerNorm.weight" in name:
                param.copy_(1 + vector_scale * torch.randn_like(param))
            elif "embeddings" in name and param.ndim == 2:
                param.normal_(0.0, 1.0)
            elif name.endswith("bias") or "LayerNorm" in name:
                param.normal_(0.0, vector_scale)
            else:
                param.normal_(0.0, matrix_scale / _fan_in(name, param.shape) ** 0.5)


def sample_inputs(vocabulary_size, batch_size=3, length=12, seed=0):
    """A padded batch with two segments: rows get 100%, 75% and 50% tokens."""
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(1, vocabulary_size, (batch_size, length))
    padding_mask = np.ones((batch_size, length), "int32")
    segment_ids = np.zeros((batch_size, length), "int32")
    for row in range(batch_size):
        real = max(2, length - row * length // 4)
        padding_mask[row, real:] = 0
        segment_ids[row, real // 2 : real] = 1
    token_ids = np.where(padding_mask == 1, token_ids, 0).astype("int32")
    return {
        "token_ids": token_ids,
        "segment_ids": segment_ids,
        "padding_mask": padding_mask,
    }


def reference_outputs(model, inputs):
    """The PyTorch model's main output on backbone-style inputs:
    `last_hidden_state` for `ConvBertModel`, `logits` for task models
    (question answering: start and end logits stacked as `(batch, 2, length)`,
    our layout)."""
    import torch

    with torch.no_grad():
        outputs = model(
            input_ids=torch.as_tensor(inputs["token_ids"], dtype=torch.long),
            token_type_ids=torch.as_tensor(inputs["segment_ids"], dtype=torch.long),
            attention_mask=torch.as_tensor(inputs["padding_mask"], dtype=torch.long),
        )
    if hasattr(outputs, "start_logits"):
        return np.stack([outputs.start_logits.numpy(), outputs.end_logits.numpy()], axis=1)
    if hasattr(outputs, "logits"):
        return outputs.logits.numpy()
    return outputs.last_hidden_state.numpy()


def write_reference_checkpoint(
    backbone_kwargs,
    directory,
    seed=0,
    vocabulary=None,
    task="backbone",
    num_labels=2,
    torch_bin=True,
):
    """Saves a random reference model and its outputs on `sample_inputs`.

    Writes `config.json` and `model.safetensors` (`save_pretrained`), the
    same weights as `pytorch_model.bin` (`torch.save` of the state dict)
    when `torch_bin`, `vocab.txt` when a vocabulary is given, and
    `reference.npz` with the inputs and the output (`sequence_output` or,
    for task models, `logits`). Returns the model.
    """
    import os

    import torch

    model = random_hf_model(backbone_kwargs, seed=seed, task=task, num_labels=num_labels)
    model.save_pretrained(directory, safe_serialization=True)
    if torch_bin:
        torch.save(model.state_dict(), os.path.join(directory, "pytorch_model.bin"))
    if vocabulary is not None:
        with open(os.path.join(directory, "vocab.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(vocabulary) + "\n")
    inputs = sample_inputs(backbone_kwargs["vocabulary_size"], seed=seed)
    output_name = "sequence_output" if task == "backbone" else "logits"
    np.savez(
        os.path.join(directory, "reference.npz"),
        **{output_name: reference_outputs(model, inputs)},
        **inputs,
    )
    return model
