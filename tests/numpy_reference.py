"""A plain NumPy ConvBERT, written from the reference code's formulation.

Independent of the Keras layers: SDConv goes through the explicit (B, L, A, K)
unfold of the reference implementations, attention through full score
matrices, GELU through math.erf.
"""

import math

import numpy as np


def softmax(x, axis=-1):
    x = x - x.max(axis=axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def gelu(x):
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def layer_norm(x, gamma, beta, eps=1e-12):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def separable_conv1d(x, depthwise, pointwise, bias):
    """depthwise (K, H, 1), pointwise (1, H, A), zero "same" padding."""
    k = depthwise.shape[0]
    half = (k - 1) // 2
    padded = np.pad(x, ((0, 0), (half, half), (0, 0)))
    length = x.shape[1]
    depth = sum(padded[:, j : j + length] * depthwise[j, :, 0] for j in range(k))
    return depth @ pointwise[0] + bias


def unfold(x, kernel_size):
    """(B, L, C) -> (B, L, C, K): window j of position t is x[t + j - half]."""
    half = (kernel_size - 1) // 2
    length = x.shape[1]
    padded = np.pad(x, ((0, 0), (half, half), (0, 0)))
    return np.stack([padded[:, j : j + length] for j in range(kernel_size)], axis=-1)


def light_conv_unfold(values, kernels, num_heads, head_dim):
    """The references' SDConv product: unfold, reshape, batched matmul."""
    b, length, a = values.shape
    k = kernels.shape[-1]
    unfolded = unfold(values, k).reshape(-1, head_dim, k)
    out = unfolded @ kernels.reshape(-1, k, 1)
    return out.reshape(b, length, num_heads, head_dim)


def span_dynamic_conv(x, query, w, num_heads, head_dim, kernel_size, span=True):
    """`w`: dict of arrays in Keras layout (see `conv_weights`)."""
    if span:
        key = separable_conv1d(x, w["depthwise"], w["pointwise"], w["key_bias"])
        kernel_input = key * query
    else:
        kernel_input = query
    logits = kernel_input @ w["kernel_kernel"] + w["kernel_bias"]
    b, length = x.shape[:2]
    kernels = softmax(logits.reshape(b, length, num_heads, kernel_size))
    values = x @ w["value_kernel"] + w["value_bias"]
    return light_conv_unfold(values, kernels, num_heads, head_dim)


def attention(query, key, value, num_heads, head_dim, padding_mask=None):
    b, length = query.shape[:2]

    def split(t):
        return t.reshape(b, length, num_heads, head_dim).transpose(0, 2, 1, 3)

    scores = split(query) @ split(key).transpose(0, 1, 3, 2) / math.sqrt(head_dim)
    if padding_mask is not None:
        scores = scores + (1.0 - padding_mask[:, None, None, :]) * np.finfo("float32").min
    context = softmax(scores) @ split(value)
    return context.transpose(0, 2, 1, 3)  # (B, L, heads, d)
