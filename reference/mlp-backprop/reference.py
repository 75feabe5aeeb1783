"""Reference implementation of the mlp-backprop lab. Runs in the grader's process only.

Network: h̃ = X·Whᵀ + bh, h = tanh(h̃), ỹ = h·Wyᵀ + by, ŷ = softmax(ỹ); loss = mean cross-entropy.
Shapes: Wh (n_h, n_x), bh (n_h,), Wy (n_y, n_h), by (n_y,); X (N, n_x); Y one-hot (N, n_y).

Besides the right answers this module holds:
- ``*_cases``: the inputs the grader draws (seeded by the grader's generator), float64;
- functions that make, on purpose, the mistakes real hand-ins make (``backward_sum`` …): the
  manifest names them, and the grader tests each against a student's numbers;
- the data sets (circles, generated; handwritten digits through ``torchvision.datasets.MNIST``).
"""

from __future__ import annotations

import numpy as np
import torch

NAMES = ("Wh", "bh", "Wy", "by")


# --- the right answers ---------------------------------------------------------------------

def init_params(nx, nh, ny):
    return {"Wh": torch.randn(nh, nx) * 0.3, "bh": torch.zeros(nh),
            "Wy": torch.randn(ny, nh) * 0.3, "by": torch.zeros(ny)}


def softmax(z):
    e = torch.exp(z - z.max(dim=1, keepdim=True).values)
    return e / e.sum(dim=1, keepdim=True)


def forward(params, X):
    htilde = X @ params["Wh"].T + params["bh"]
    h = torch.tanh(htilde)
    ytilde = h @ params["Wy"].T + params["by"]
    yhat = softmax(ytilde)
    return yhat, {"X": X, "htilde": htilde, "h": h, "ytilde": ytilde, "yhat": yhat}


def loss_accuracy(Yhat, Y):
    L = -(Y * torch.log(Yhat)).sum(dim=1).mean()
    acc = (Yhat.argmax(dim=1) == Y.argmax(dim=1)).double().mean()
    return L, acc


def gradients_autograd(params, outputs, Y):
    """What ``backward`` must return, computed by autograd (the grader's own computation)."""
    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
    yhat, _ = forward(leaves, outputs["X"])
    loss, _ = loss_accuracy(yhat, Y)
    grads = torch.autograd.grad(loss, [leaves[k] for k in NAMES])
    return dict(zip(NAMES, grads))


def sgd(params, grads, eta):
    return {k: params[k] - eta * grads[k] for k in NAMES}


def backward(params, outputs, Y):
    """The hand-written backward pass (what students write): equal to ``gradients_autograd``."""
    return _backward(params, outputs, Y)


def init_params_autograd(nx, nh, ny):
    return {k: v.requires_grad_(True) for k, v in init_params(nx, nh, ny).items()}


def sgd_autograd(params, eta):
    with torch.no_grad():
        for v in params.values():
            v -= eta * v.grad
            v.grad.zero_()
    return params


def init_model(nx, nh, ny):
    model = torch.nn.Sequential(torch.nn.Linear(nx, nh), torch.nn.Tanh(), torch.nn.Linear(nh, ny))
    for layer in (model[0], model[2]):
        torch.nn.init.normal_(layer.weight, 0.0, 0.3)
        torch.nn.init.zeros_(layer.bias)
    return model, torch.nn.CrossEntropyLoss()


def sgd_model(model, eta):
    with torch.no_grad():
        for p in model.parameters():
            p -= eta * p.grad
    model.zero_grad()


def init_model_optim(nx, nh, ny, eta):
    model, loss = init_model(nx, nh, ny)
    return model, loss, torch.optim.SGD(model.parameters(), lr=eta)


def predict(params, X):
    """Scores on X from trained parameters (the grader's forward, not the student's)."""
    return forward({k: torch.as_tensor(v, dtype=torch.float64) for k, v in params.items()},
                   torch.as_tensor(X, dtype=torch.float64))[0]


# --- mistakes made on purpose ----------------------------------------------------------------

def _backward(params, outputs, Y, *, mean=True, dtanh_of_htilde=False, dtanh=True):
    N = Y.shape[0] if mean else 1
    delta_y = (outputs["yhat"] - Y) / N
    grad_Wy = delta_y.T @ outputs["h"]
    grad_by = delta_y.sum(0)
    act = outputs["htilde"] if dtanh_of_htilde else outputs["h"]
    delta_h = (delta_y @ params["Wy"]) * ((1 - act ** 2) if dtanh else 1)
    grad_Wh = delta_h.T @ outputs["X"]
    grad_bh = delta_h.sum(0)
    return {"Wh": grad_Wh, "bh": grad_bh, "Wy": grad_Wy, "by": grad_by}


def backward_sum(params, outputs, Y):
    return _backward(params, outputs, Y, mean=False)


def backward_dtanh_of_htilde(params, outputs, Y):
    return _backward(params, outputs, Y, dtanh_of_htilde=True)


def backward_without_dtanh(params, outputs, Y):
    """A real hand-in's mistake: δh = δy·Wy, the tanh′ factor (1 − h²) left out."""
    return _backward(params, outputs, Y, dtanh=False)


def backward_transposed(params, outputs, Y):
    g = _backward(params, outputs, Y)
    return {**g, "Wh": g["Wh"].T, "Wy": g["Wy"].T}


def backward_no_bias(params, outputs, Y):
    g = _backward(params, outputs, Y)
    return {**g, "bh": torch.zeros_like(g["bh"]), "by": torch.zeros_like(g["by"])}


def forward_naive_softmax(params, X):
    htilde = X @ params["Wh"].T + params["bh"]
    h = torch.tanh(htilde)
    ytilde = h @ params["Wy"].T + params["by"]
    e = torch.exp(ytilde)
    yhat = e / e.sum(dim=1, keepdim=True)
    return yhat, {"X": X, "htilde": htilde, "h": h, "ytilde": ytilde, "yhat": yhat}


def loss_accuracy_sum(Yhat, Y):
    L, acc = loss_accuracy(Yhat, Y)
    return L * Y.shape[0], acc


def sgd_uphill(params, grads, eta):
    return {k: params[k] + eta * grads[k] for k in NAMES}


# --- the inputs the grader draws -------------------------------------------------------------

SIZES = (5, 7, 3)   # n_x, n_h, n_y all different, so that a transposed matrix cannot pass


def _params(rng, nx, nh, ny, scale=1.0):
    return {"Wh": rng.normal(0, 0.5, (nh, nx)), "bh": rng.normal(0, 0.5, nh),
            "Wy": rng.normal(0, 0.5 * scale, (ny, nh)), "by": rng.normal(0, 0.5, ny)}


def _batch(rng, n, nx, ny):
    X = rng.normal(0, 1, (n, nx))
    Y = np.eye(ny)[rng.integers(0, ny, n)]
    return X, Y


def init_cases(rng):
    # Sizes of no data set of the lab: a case named init_params(784, …) would answer the sheet's digits.n_x.
    return [{"label": "init_params(200, 100, 50)", "args": [200, 100, 50]},
            {"label": "init_params(300, 40, 20)", "args": [300, 40, 20]}]


def forward_cases(rng):
    nx, nh, ny = SIZES
    cases = []
    for n in (1, 4, 11):
        X, _ = _batch(rng, n, nx, ny)
        cases.append({"label": f"a batch of {n}", "args": [_params(rng, nx, nh, ny), X]})
    return cases


def large_logit_cases(rng):
    """Logits around 1000: exp overflows (past about 709) without max-subtraction."""
    nx, nh, ny = SIZES
    X, _ = _batch(rng, 8, nx, ny)
    params = _params(rng, nx, nh, ny, scale=100.0)
    params["by"] = params["by"] + 1000.0
    return [{"label": "logits of about 1000", "args": [params, X]}]


def loss_cases(rng):
    _, _, ny = SIZES
    cases = []
    for n in (1, 6, 20):
        logits = rng.normal(0, 2, (n, ny))
        yhat = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        cases.append({"label": f"a batch of {n}", "args": [yhat, np.eye(ny)[rng.integers(0, ny, n)]]})
    return cases


def backward_cases(rng):
    nx, nh, ny = SIZES
    cases = []
    for n in (1, 6, 11):
        params = _params(rng, nx, nh, ny)
        X, Y = _batch(rng, n, nx, ny)
        tp = {k: torch.from_numpy(v) for k, v in params.items()}
        _, outputs = forward(tp, torch.from_numpy(X))
        cases.append({"label": f"a batch of {n}",
                      "args": [params, {k: v.numpy() for k, v in outputs.items()}, Y]})
    return cases


def sgd_cases(rng):
    nx, nh, ny = SIZES
    return [{"label": f"eta = {eta}", "args": [_params(rng, nx, nh, ny), _params(rng, nx, nh, ny), eta]}
            for eta in (0.03, 0.5)]


# --- data --------------------------------------------------------------------------------------

def circles(data_root=None, n_train=200, n_test=200, noise=0.15, scale=2.0, seed=0):
    """Two concentric noisy circles of radius 2 and 1 (the inner one is class 1)."""
    rng = np.random.default_rng(seed)

    def draw(n):
        labels = rng.integers(0, 2, n)
        radius = scale * (np.where(labels == 1, 0.5, 1.0) + rng.normal(0, noise, n))
        angle = rng.uniform(0, 2 * np.pi, n)
        return np.stack([radius * np.cos(angle), radius * np.sin(angle)], 1), labels

    train_x, train_y = draw(n_train)
    test_x, test_y = draw(n_test)
    return {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y, "classes": 2}


def digits(data_root=None, n_train=None):
    """MNIST through torchvision's own loader: the real data when ``data_root`` holds it, else
    the handwritten digits gradelab writes in MNIST's layout. Pixels scaled to [0, 1], flattened."""
    from torchvision.datasets import MNIST

    from grader.data.digits import ensure_digits

    root = data_root if data_root is not None else ensure_digits()
    out = {"classes": 10}
    for split, train in (("train", True), ("test", False)):
        ds = MNIST(str(root), train=train, download=False)
        x = ds.data.reshape(len(ds.data), -1).double().numpy() / 255.0
        y = ds.targets.numpy()
        if train and n_train:
            x, y = x[:n_train], y[:n_train]
        out[f"{split}_x"], out[f"{split}_y"] = x, y
    return out
