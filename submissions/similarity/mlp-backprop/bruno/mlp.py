"""Bruno's MLP: the whole network written with the @ operator and small helpers."""

import math

import torch
from torch import nn


def _gaussian(*shape, std=0.3):
    return std * torch.randn(*shape, dtype=torch.float64)


def init_params(nx, nh, ny):
    """Gaussian weights, zero biases."""
    return dict(Wh=_gaussian(nh, nx), bh=torch.zeros(nh, dtype=torch.float64),
                Wy=_gaussian(ny, nh), by=torch.zeros(ny, dtype=torch.float64))


def _stable_softmax(logits):
    shifted = logits - logits.amax(dim=-1, keepdim=True)
    numer = shifted.exp()
    return numer / numer.sum(dim=-1, keepdim=True)


def forward(params, X):
    pre_hidden = X @ params["Wh"].T + params["bh"]
    hidden = pre_hidden.tanh()
    logits = hidden @ params["Wy"].T + params["by"]
    probs = _stable_softmax(logits)
    cache = dict(X=X, htilde=pre_hidden, h=hidden, ytilde=logits, yhat=probs)
    return probs, cache


def loss_accuracy(Yhat, Y):
    eps = 1e-12
    per_example = -(Y * (Yhat + eps).log()).sum(dim=-1)
    hits = (Yhat.argmax(dim=-1) == Y.argmax(dim=-1)).double()
    return per_example.mean(), hits.mean().item()


def backward(params, outputs, Y):
    batch = X_rows = outputs["X"].shape[0]
    g_logits = (outputs["yhat"] - Y) / batch
    g_hidden = (g_logits @ params["Wy"]) * (1.0 - outputs["h"].pow(2))
    return {
        "Wy": g_logits.T @ outputs["h"],
        "by": g_logits.sum(dim=0),
        "Wh": g_hidden.T @ outputs["X"],
        "bh": g_hidden.sum(dim=0),
    }


def sgd(params, grads, eta):
    return {name: value - eta * grads[name] for name, value in params.items()}


def init_params_autograd(nx, nh, ny):
    return {name: t.clone().requires_grad_(True) for name, t in init_params(nx, nh, ny).items()}


def sgd_autograd(params, eta):
    with torch.no_grad():
        for tensor in params.values():
            tensor.sub_(eta * tensor.grad)
            tensor.grad = None
    return params


class TwoLayer(nn.Module):
    def __init__(self, nx, nh, ny):
        super().__init__()
        self.hidden = nn.Linear(nx, nh)
        self.out = nn.Linear(nh, ny)

    def forward(self, x):
        return self.out(torch.tanh(self.hidden(x)))


def init_model(nx, nh, ny):
    return TwoLayer(nx, nh, ny), nn.CrossEntropyLoss()


def sgd_model(model, eta):
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p.add_(p.grad, alpha=-eta)
    model.zero_grad(set_to_none=True)


def init_model_optim(nx, nh, ny, eta):
    model, criterion = init_model(nx, nh, ny)
    return model, criterion, torch.optim.SGD(model.parameters(), lr=eta)
