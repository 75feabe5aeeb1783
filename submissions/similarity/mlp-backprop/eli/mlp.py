"""mlp-backprop hand-in (Eli)."""

import torch


def init_params(nx, nh, ny):
    theta = {}
    theta["Wh"] = torch.randn(nh, nx) * 0.3
    theta["bh"] = torch.zeros(nh)
    theta["Wy"] = torch.randn(ny, nh) * 0.3
    theta["by"] = torch.zeros(ny)
    return theta


def stable_probs(scores):
    # subtract the max of each row so that exp never overflows
    scores = scores - scores.max(dim=1, keepdim=True)[0]
    expd = torch.exp(scores)
    return expd / expd.sum(dim=1, keepdim=True)


def forward(params, X):
    cache = {"X": X}
    cache["htilde"] = torch.mm(X, params["Wh"].t()) + params["bh"]
    cache["h"] = torch.tanh(cache["htilde"])
    cache["ytilde"] = torch.mm(cache["h"], params["Wy"].t()) + params["by"]
    cache["yhat"] = stable_probs(cache["ytilde"])
    return cache["yhat"], cache


def loss_accuracy(Yhat, Y):
    cost = -torch.mean(torch.sum(Y * torch.log(Yhat), dim=1))
    _, truth = torch.max(Y, 1)
    _, guess = torch.max(Yhat, 1)
    ratio = torch.sum(truth == guess).item() / Y.shape[0]
    return cost, ratio


def backward(params, outputs, Y):
    batch = Y.shape[0]
    g = {}
    err_y = (outputs["yhat"] - Y) / batch
    g["Wy"] = torch.mm(err_y.t(), outputs["h"])
    g["by"] = torch.sum(err_y, 0)
    err_h = torch.mm(err_y, params["Wy"]) * (1 - outputs["h"] ** 2)
    g["Wh"] = torch.mm(err_h.t(), outputs["X"])
    g["bh"] = torch.sum(err_h, 0)
    return g


def sgd(params, grads, eta):
    for key in params:
        params[key] = params[key] - eta * grads[key]
    return params


def init_params_autograd(nx, nh, ny):
    theta = init_params(nx, nh, ny)
    for t in theta.values():
        t.requires_grad = True
    return theta


def sgd_autograd(params, eta):
    with torch.no_grad():
        for t in params.values():
            t -= eta * t.grad
            t.grad.zero_()
    return params


def init_model(nx, nh, ny):
    net = torch.nn.Sequential(torch.nn.Linear(nx, nh), torch.nn.Tanh(), torch.nn.Linear(nh, ny))
    crit = torch.nn.CrossEntropyLoss()
    return net, crit


def sgd_model(model, eta):
    with torch.no_grad():
        for w in model.parameters():
            w -= eta * w.grad
    model.zero_grad()


def init_model_optim(nx, nh, ny, eta):
    net, crit = init_model(nx, nh, ny)
    opt = torch.optim.SGD(net.parameters(), lr=eta)
    return net, crit, opt
