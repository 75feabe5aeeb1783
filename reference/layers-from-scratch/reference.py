"""Reference of the layers-from-scratch lab. Runs in the grader's process only.

For each op: the torch op the student re-implements (``ref_*``, the expected values), a builder
that turns declared dimensions into arguments (``build_*``, raising ValueError when the
dimensions make no valid input), and, where real hand-ins make a recognisable mistake, a function
making it on purpose (the manifest names it; the grader tests it against the student's outputs).
Arguments are float32, like the tensors students build by default.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import roi_pool


def _values(rng, shape, ints, scale=1.0):
    if ints:
        return rng.integers(-3, 4, shape).astype(np.float32)
    return (rng.normal(0, 1, shape) * scale).astype(np.float32)


# --- pooling -----------------------------------------------------------------------------------

def build_pool(rng, ints, N, C, H, W, k, s, scale=1.0):
    if k > H or k > W:
        raise ValueError("kernel larger than the input")
    return [_values(rng, (N, C, H, W), ints, scale), k, s]


def ref_maxpool2d(x, k, s):
    return F.max_pool2d(x, k, s)


def ref_avgpool2d(x, k, s):
    return F.avg_pool2d(x, k, s)


# --- convolutions ------------------------------------------------------------------------------

def build_conv(rng, ints, N, C, H, W, O, k, s, p, d=1, scale=1.0):
    if d * (k - 1) + 1 > min(H, W) + 2 * p or 2 * p > k * d:
        raise ValueError("no valid output")
    return [_values(rng, (N, C, H, W), ints, scale), _values(rng, (O, C, k, k), ints),
            _values(rng, (O,), ints), s, p] + ([d] if d != 1 else [])


def build_dilated(rng, ints, N, C, H, W, O, k, s, p, d, scale=1.0):
    args = build_conv(rng, ints, N, C, H, W, O, k, s, p, d, scale)
    return args if len(args) == 6 else args + [1]


def ref_conv2d(x, weight, bias, stride, padding):
    return F.conv2d(x, weight, bias, stride=stride, padding=padding)


def ref_conv2d_dilated(x, weight, bias, stride, padding, dilation):
    return F.conv2d(x, weight, bias, stride=stride, padding=padding, dilation=dilation)


def conv2d_size_off_by_one(x, weight, bias, stride, padding):
    """Output size (H + 2p − k + 1) // s: right for stride 1, one too few or too many otherwise."""
    h = (x.shape[2] + 2 * padding - weight.shape[2] + 1) // stride
    w = (x.shape[3] + 2 * padding - weight.shape[3] + 1) // stride
    full = F.conv2d(x, weight, bias, stride=stride, padding=padding)
    out = torch.zeros(full.shape[0], full.shape[1], max(h, 0), max(w, 0))
    hh, ww = min(h, full.shape[2]), min(w, full.shape[3])
    out[:, :, :hh, :ww] = full[:, :, :hh, :ww]
    return out


def build_transpose(rng, ints, N, C, H, W, O, k, s, p, scale=1.0):
    if (H - 1) * s - 2 * p + k < 1 or (W - 1) * s - 2 * p + k < 1 or p >= k:
        raise ValueError("no valid output")
    return [_values(rng, (N, C, H, W), ints, scale), _values(rng, (C, O, k, k), ints), _values(rng, (O,), ints), s, p]


def ref_conv_transpose2d(x, weight, bias, stride, padding):
    return F.conv_transpose2d(x, weight, bias, stride=stride, padding=padding)


def conv_transpose2d_padding_added(x, weight, bias, stride, padding):
    """Pads the output with zeros instead of cropping ``padding`` from each side."""
    full = F.conv_transpose2d(x, weight, None, stride=stride, padding=0)
    return F.pad(full, (padding,) * 4) + bias.view(1, -1, 1, 1)


# --- shape, ROI, activation --------------------------------------------------------------------

def build_flatten(rng, ints, N, C, H, W, scale=1.0):
    return [_values(rng, (N, C, H, W), ints, scale)]


def ref_flatten(x):
    return torch.flatten(x, 1)


def build_roi(rng, ints, N, C, H, W, K, out, scale_div=1, scale=1.0):
    """K boxes (batch index, x1, y1, x2, y2) in input coordinates times ``1 / spatial_scale``."""
    x = _values(rng, (N, C, H, W), ints, scale)
    boxes = []
    for _ in range(K):
        x1, x2 = sorted(rng.integers(0, W * scale_div, 2))
        y1, y2 = sorted(rng.integers(0, H * scale_div, 2))
        boxes.append([rng.integers(0, N), x1, y1, x2, y2])
    return [x, np.asarray(boxes, dtype=np.float32).reshape(K, 5), out, 1.0 / scale_div]


def ref_roi_pool(x, boxes, output_size, spatial_scale):
    return roi_pool(x, boxes, output_size, spatial_scale)


def build_matrix(rng, ints, N, F_, scale=1.0):
    return [_values(rng, (N, F_), ints, scale)]


def ref_sigmoid(x):
    return torch.sigmoid(x)


# --- batch norm --------------------------------------------------------------------------------

def build_batchnorm(rng, ints, N, C, H, W, train, scale=1.0):
    if train and N * H * W < 2:
        raise ValueError("batch statistics need two values per channel")
    mean = _values(rng, (C,), ints)
    var = np.abs(_values(rng, (C,), ints)) + 0.5
    return [_values(rng, (N, C, H, W), ints, scale), _values(rng, (C,), ints), _values(rng, (C,), ints),
            mean, var.astype(np.float32), bool(train), 0.1, 1e-5]


def ref_batchnorm(x, gamma, beta, running_mean, running_var, training, momentum, eps):
    """What torch returns, and the running statistics it leaves (it updates them in place)."""
    rm, rv = running_mean.clone(), running_var.clone()
    y = F.batch_norm(x, rm, rv, gamma, beta, training=training, momentum=momentum, eps=eps)
    return y, rm, rv


def batchnorm_biased_running_var(x, gamma, beta, running_mean, running_var, training, momentum, eps):
    """The running variance updated with the biased batch variance (torch uses the unbiased one)."""
    y, rm, rv = ref_batchnorm(x, gamma, beta, running_mean, running_var, training, momentum, eps)
    if training:
        var = x.var(dim=(0, 2, 3), unbiased=False)
        rv = (1 - momentum) * running_var + momentum * var
    return y, rm, rv


# --- losses ------------------------------------------------------------------------------------

def build_ce(rng, ints, N, K, scale=1.0):
    return [_values(rng, (N, K), ints, scale), rng.integers(0, K, N).astype(np.int64)]


def ref_cross_entropy(logits, targets):
    return F.cross_entropy(logits, targets)


def cross_entropy_naive(logits, targets):
    """log(softmax) computed as log(exp(z) / Σ exp(z)): overflows past z ≈ 88 in float32."""
    p = torch.exp(logits) / torch.exp(logits).sum(1, keepdim=True)
    return -torch.log(p[torch.arange(len(targets)), targets]).mean()


def build_mse(rng, ints, N, F_, scale=1.0):
    return [_values(rng, (N, F_), ints, scale), _values(rng, (N, F_), ints, scale)]


def ref_mse_loss(pred, target):
    return F.mse_loss(pred, target)


# --- the small all-conv network ------------------------------------------------------------------

class AllConvNet(nn.Module):
    """3×3 convs 16,16 | pool | 32,32 | pool | 64,64 | pool | 128,128 | global average pool | dense 10."""

    def __init__(self, batchnorm=False):
        super().__init__()
        layers, c_in = [], 3
        for i, width in enumerate((16, 32, 64, 128)):
            for _ in range(2):
                layers.append(nn.Conv2d(c_in, width, 3, padding=1))
                if batchnorm:
                    layers.append(nn.BatchNorm2d(width))
                layers.append(nn.ReLU())
                c_in = width
            if i < 3:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        return self.fc(self.features(x).mean(dim=(2, 3)))
