"""layers-from-scratch hand-in that calls the very torch ops it was asked to write, reached so that
no list of names can catch them: max-pooling through F.max_pool2d_with_indices and a 2-D
convolution through F.conv3d, both fetched with getattr from built strings into a dict, and the
sigmoid as torch.sigmoid fetched the same way. It passed as hand-written. Expected: maxpool2d,
conv2d and sigmoid score zero, each naming the aten operator it ran (aten::max_pool2d_with_indices,
aten::convolution, aten::sigmoid); every other op keeps its score."""

import math

import torch
from torch import nn

F = getattr(torch.nn, "func" + "tional")
OPS = {"pool": getattr(F, "max_pool2d" + "_with_indices"), "conv": getattr(F, "conv" + "3d"),
       "squash": getattr(torch, "sig" + "moid")}


def _pad(x, p):
    if p == 0:
        return x
    n, c, h, w = x.shape
    out = x.new_zeros(n, c, h + 2 * p, w + 2 * p)
    out[:, :, p:p + h, p:p + w] = x
    return out


def _windows(x, k, s):
    """(N, C, Ho, Wo, k, k): every k×k window at stride s."""
    return x.unfold(2, k, s).unfold(3, k, s)


def maxpool2d(x, kernel_size, stride):
    return OPS["pool"](x, kernel_size, stride)[0]  # max_pool2d_with_indices, looked up by a built name


def avgpool2d(x, kernel_size, stride):
    return _windows(x, kernel_size, stride).mean(dim=(-2, -1))


def conv2d(x, weight, bias, stride, padding):
    # a 3-D convolution over a depth of one is a 2-D convolution, and conv3d is in no list of names
    return OPS["conv"](x.unsqueeze(2), weight.unsqueeze(2), bias, (1, stride, stride), (0, padding, padding)).squeeze(2)


def conv2d_dilated(x, weight, bias, stride, padding, dilation):
    k = weight.shape[2]
    span = dilation * (k - 1) + 1
    patches = _windows(_pad(x, padding), span, stride)[..., ::dilation, ::dilation]
    return torch.einsum("nchwij,ocij->nohw", patches, weight) + bias.view(1, -1, 1, 1)


def conv_transpose2d(x, weight, bias, stride, padding):
    n, c, h, w = x.shape
    k = weight.shape[2]
    full_h, full_w = (h - 1) * stride + k, (w - 1) * stride + k
    out = x.new_zeros(n, weight.shape[1], full_h, full_w)
    for i in range(k):
        for j in range(k):
            contribution = torch.einsum("nchw,co->nohw", x, weight[:, :, i, j])
            out[:, :, i:i + (h - 1) * stride + 1:stride, j:j + (w - 1) * stride + 1:stride] += contribution
    out = out[:, :, padding:full_h - padding, padding:full_w - padding]
    return out + bias.view(1, -1, 1, 1)


def flatten(x):
    return x.reshape(x.shape[0], -1)


def roi_pool(x, boxes, output_size, spatial_scale):
    """Max over each of output_size × output_size bins of each box, as torchvision bins them."""
    ph_n, pw_n = (output_size, output_size) if isinstance(output_size, int) else output_size
    _, c, height, width = x.shape
    out = x.new_zeros(len(boxes), c, ph_n, pw_n)
    for r, box in enumerate(boxes.tolist()):
        b = int(box[0])
        x1, y1, x2, y2 = (math.floor(v * spatial_scale + 0.5) for v in box[1:])
        roi_w, roi_h = max(x2 - x1 + 1, 1), max(y2 - y1 + 1, 1)
        bin_h, bin_w = roi_h / ph_n, roi_w / pw_n
        for ph in range(ph_n):
            hs = min(max(math.floor(ph * bin_h) + y1, 0), height)
            he = min(max(math.ceil((ph + 1) * bin_h) + y1, 0), height)
            for pw in range(pw_n):
                ws = min(max(math.floor(pw * bin_w) + x1, 0), width)
                we = min(max(math.ceil((pw + 1) * bin_w) + x1, 0), width)
                if he > hs and we > ws:
                    out[r, :, ph, pw] = x[b, :, hs:he, ws:we].amax(dim=(-2, -1))
    return out


def sigmoid(x):
    return OPS["squash"](x)


def batchnorm(x, gamma, beta, running_mean, running_var, training, momentum, eps):
    shape = (1, -1, 1, 1)
    if training:
        mean = x.mean(dim=(0, 2, 3))
        var = ((x - mean.view(shape)) ** 2).mean(dim=(0, 2, 3))
        n = x.numel() / x.shape[1]
        running_mean = (1 - momentum) * running_mean + momentum * mean
        running_var = (1 - momentum) * running_var + momentum * var * n / (n - 1)
    else:
        mean, var = running_mean, running_var
    y = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + eps) * gamma.view(shape) + beta.view(shape)
    return y, running_mean, running_var


def cross_entropy(logits, targets):
    m = logits.max(dim=1, keepdim=True).values
    log_sum_exp = m.squeeze(1) + torch.log(torch.exp(logits - m).sum(dim=1))
    return (log_sum_exp - logits[torch.arange(len(targets)), targets]).mean()


def mse_loss(pred, target):
    return ((pred - target) ** 2).mean()


class AllConvNet(nn.Module):
    def __init__(self, batchnorm=False):
        super().__init__()
        layers, c_in = [], 3
        for block, width in enumerate([16, 32, 64, 128]):
            for _ in range(2):
                layers += [nn.Conv2d(c_in, width, 3, padding=1)]
                layers += [nn.BatchNorm2d(width)] if batchnorm else []
                layers += [nn.ReLU()]
                c_in = width
            if block < 3:
                layers += [nn.MaxPool2d(2)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(128, 10)

    def forward(self, x):
        return self.head(self.body(x).mean(dim=(2, 3)))
