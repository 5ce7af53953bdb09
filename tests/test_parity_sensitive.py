"""Parity that can fail: weights far from initialisation, float64 truth and
negative controls.

transformers' ConvBERT gets weights of trained-model scale (`reference.
spread_weights`: peaked attention and dynamic kernels). Its float64 run is
the truth; our float32 backbone, converted from the same weights, must be as
close to it as transformers' own float32 run. Then three deliberate
mistakes, each in one layer of the converted model, must be seen: reversed
depthwise taps of the span-based key, a zeroed dynamic-kernel generator and
the [attention, convolution] concatenation swapped.
"""

import copy

import numpy as np
import pytest

from convbert_keras import ConvBertBackbone
from convbert_keras import convbert_config
from convbert_keras.convert.weights import load_weights_into_backbone
from convbert_keras.lab import reference

pytestmark = [pytest.mark.slow, pytest.mark.reference]

# The published sizes' widths (medium-small has grouped feed-forwards) at two
# layers: depth adds nothing to what a layer can get wrong, and
# test_parity_full keeps one 12-layer check.
CONFIGS = {
    size: convbert_config(size, num_layers=2, vocabulary_size=1000, max_sequence_length=128)
    for size in ("small", "medium-small", "base")
}
# Everything a wrong conversion or layer would change moves the output far
# more than this; float32 rounding stays far below it.
CONTROL_THRESHOLD = 1e-3


def _torch_run(model, inputs, dtype):
    import torch

    model = copy.deepcopy(model).to(dtype)
    with torch.no_grad():
        outputs = model(
            input_ids=torch.as_tensor(inputs["token_ids"], dtype=torch.long),
            token_type_ids=torch.as_tensor(inputs["segment_ids"], dtype=torch.long),
            attention_mask=torch.as_tensor(inputs["padding_mask"], dtype=torch.long),
            output_attentions=True,
        )
    return outputs.last_hidden_state.numpy().astype("float64"), outputs.attentions


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def case(request):
    kwargs = CONFIGS[request.param]
    model = reference.random_hf_model(kwargs, seed=3, spread=True)
    inputs = reference.sample_inputs(kwargs["vocabulary_size"], batch_size=3, length=64, seed=3)
    state = {name: value.numpy() for name, value in model.state_dict().items()}
    return request.param, kwargs, model, inputs, state


def ours(kwargs, state, inputs, edit=None):
    backbone = ConvBertBackbone(**kwargs)
    load_weights_into_backbone(backbone, state)
    if edit is not None:
        edit(backbone.transformer_layers[0].attention)
    return np.asarray(backbone.predict_on_batch(inputs)["sequence_output"], "float64")


def test_weights_are_far_from_initialisation(case):
    """The check is only as sharp as the softmaxes are peaked."""
    import torch

    name, kwargs, model, inputs, _ = case
    kernels = []
    hooks = [
        layer.attention.self.conv_kernel_layer.register_forward_hook(
            lambda module, args, out: kernels.append(out.detach())
        )
        for layer in model.encoder.layer
    ]
    try:
        _, attentions = _torch_run(model, inputs, torch.float32)
    finally:
        for hook in hooks:
            hook.remove()
    real = inputs["padding_mask"].astype(bool)
    attention_peak = np.mean(
        [a.numpy().max(-1).transpose(0, 2, 1)[real].mean() for a in attentions]
    )
    kernel_probs = torch.softmax(torch.cat(kernels).reshape(-1, kwargs["conv_kernel_size"]), -1)
    kernel_peak = float(kernel_probs.max(-1).values.mean())
    print(
        f"{name}: mean top attention weight {attention_peak:.2f} over 2-64 keys, "
        f"mean top kernel tap {kernel_peak:.2f} of 9"
    )
    # Uniform would be about 1/40 and 1/9; initial weights give about that.
    assert attention_peak > 0.25
    assert kernel_peak > 0.4


def test_float32_is_as_close_to_float64_as_transformers(case):
    import torch

    name, kwargs, model, inputs, state = case
    truth, _ = _torch_run(model, inputs, torch.float64)
    theirs, _ = _torch_run(model, inputs, torch.float32)
    got = ours(kwargs, state, inputs)
    their_error = float(np.abs(theirs - truth).max())
    our_error = float(np.abs(got - truth).max())
    print(
        f"{name}: max abs error against float64: ours {our_error:.2e}, "
        f"transformers float32 {their_error:.2e}"
    )
    # Same order as transformers' own float32 (summation orders differ).
    assert our_error <= 3 * their_error


def _reverse_key_taps(attention):
    conv = attention.span_dynamic_conv
    conv.key_depthwise_kernel.assign(conv.key_depthwise_kernel.numpy()[::-1])


def _zero_kernel_generator(attention):
    dense = attention.span_dynamic_conv.kernel_dense
    dense.kernel.assign(np.zeros(dense.kernel.shape, "float32"))
    dense.bias.assign(np.zeros(dense.bias.shape, "float32"))


def _swap_attention_and_conv(attention):
    # Feeding the output projection [conv, attention] instead of
    # [attention, conv] is the same as swapping its two input halves.
    kernel = attention.output_dense.kernel.numpy()
    half = kernel.shape[0] // 2
    attention.output_dense.kernel.assign(np.concatenate([kernel[half:], kernel[:half]]))


@pytest.mark.parametrize(
    "edit",
    [_reverse_key_taps, _zero_kernel_generator, _swap_attention_and_conv],
    ids=["reversed-key-taps", "zeroed-kernel-generator", "swapped-concatenation"],
)
def test_negative_controls_are_caught(case, edit):
    import torch

    name, kwargs, model, inputs, state = case
    truth, _ = _torch_run(model, inputs, torch.float64)
    error = float(np.abs(ours(kwargs, state, inputs, edit) - truth).max())
    print(f"{name}, {edit.__name__}: max abs difference {error:.2e}")
    assert error > CONTROL_THRESHOLD
