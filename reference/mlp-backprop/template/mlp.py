"""mlp-backprop: a one-hidden-layer MLP, its backward pass written by hand.

Network: h̃ = X·Whᵀ + bh, h = tanh(h̃), ỹ = h·Wyᵀ + by, ŷ = softmax(ỹ); loss = mean cross-entropy.
Shapes: Wh (nh, nx), bh (nh,), Wy (ny, nh), by (ny,); X (N, nx); Y one-hot (N, ny).
Tensors arrive as float64; keep their dtype.

Check yourself before handing in:  gradelab check . --lab mlp-backprop
"""

import torch


# --- Part 1: everything by hand -------------------------------------------------------------

def init_params(nx, nh, ny):
    """Weights ~ N(0, 0.3²), biases zero. Returns {"Wh", "bh", "Wy", "by"}."""
    raise NotImplementedError


def forward(params, X):
    """Returns (Yhat, outputs) where outputs = {"X", "htilde", "h", "ytilde", "yhat"}."""
    raise NotImplementedError


def loss_accuracy(Yhat, Y):
    """Mean cross-entropy over the batch, and the share of rows classified right."""
    raise NotImplementedError


def backward(params, outputs, Y):
    """Gradients of the mean loss: {"Wh", "bh", "Wy", "by"}, each of its parameter's shape."""
    raise NotImplementedError


def sgd(params, grads, eta):
    """One gradient-descent step; returns the new parameters."""
    raise NotImplementedError


# --- Part 2: autograd ------------------------------------------------------------------------

def init_params_autograd(nx, nh, ny):
    """As init_params, with requires_grad=True on every tensor."""
    raise NotImplementedError


def sgd_autograd(params, eta):
    """One step using each tensor's .grad (under torch.no_grad()), then zero the gradients."""
    raise NotImplementedError


# --- Part 3: torch.nn ------------------------------------------------------------------------

def init_model(nx, nh, ny):
    """Returns (model, loss): a torch.nn model giving logits, and a loss taking (logits, class indices)."""
    raise NotImplementedError


def sgd_model(model, eta):
    """One step on model.parameters() using their .grad, then zero the gradients."""
    raise NotImplementedError


# --- Part 4: torch.optim ---------------------------------------------------------------------

def init_model_optim(nx, nh, ny, eta):
    """Returns (model, loss, optimizer) with a torch.optim.SGD optimizer of learning rate eta."""
    raise NotImplementedError
