import torch
import torch.nn as nn
import torch.nn.functional as F

# Gus — lab 1. Shapes: W1 (nh, nx), W2 (ny, nh); X is (N, nx).

NAMES = ("Wh", "bh", "Wy", "by")


def init_params(nx, nh, ny):
    shapes = [(nh, nx), (nh,), (ny, nh), (ny,)]
    return {name: torch.normal(0.0, 0.3, size=shape) if name.startswith("W") else torch.zeros(shape)
            for name, shape in zip(NAMES, shapes)}


def forward(params, X):
    Wh, bh, Wy, by = (params[n] for n in NAMES)
    ht = torch.einsum("nx,hx->nh", X, Wh) + bh
    h = torch.tanh(ht)
    yt = torch.einsum("nh,yh->ny", h, Wy) + by
    m, _ = torch.max(yt, dim=1, keepdim=True)
    ex = torch.exp(yt - m)
    yh = ex / torch.sum(ex, dim=1, keepdim=True)
    return yh, {"X": X, "htilde": ht, "h": h, "ytilde": yt, "yhat": yh}


def loss_accuracy(Yhat, Y):
    n = len(Y)
    total = 0.0
    correct = 0
    i = 0
    while i < n:
        k = int(torch.argmax(Y[i]))
        total = total - torch.log(Yhat[i, k])
        correct += int(int(torch.argmax(Yhat[i])) == k)
        i += 1
    return total / n, correct / n


def backward(params, outputs, Y):
    n = Y.size(0)
    dyt = (outputs["yhat"] - Y) / n
    dWy = torch.einsum("ny,nh->yh", dyt, outputs["h"])
    dby = dyt.sum(0)
    dht = torch.einsum("ny,yh->nh", dyt, params["Wy"]) * (1 - torch.tanh(outputs["htilde"]) ** 2)
    dWh = torch.einsum("nh,nx->hx", dht, outputs["X"])
    dbh = dht.sum(0)
    return {"Wh": dWh, "bh": dbh, "Wy": dWy, "by": dby}


def sgd(params, grads, eta):
    return {n: params[n] - eta * grads[n] for n in NAMES}


def init_params_autograd(nx, nh, ny):
    p = init_params(nx, nh, ny)
    list(map(lambda n: p[n].requires_grad_(), NAMES))
    return p


def sgd_autograd(params, eta):
    with torch.no_grad():
        k = 0
        while k < len(NAMES):
            params[NAMES[k]] -= eta * params[NAMES[k]].grad
            params[NAMES[k]].grad.zero_()
            k += 1
    return params


def init_model(nx, nh, ny):
    net = nn.Sequential()
    net.add_module("lin1", nn.Linear(nx, nh))
    net.add_module("act", nn.Tanh())
    net.add_module("lin2", nn.Linear(nh, ny))
    return net, F.cross_entropy


def sgd_model(model, eta):
    with torch.no_grad():
        ws = list(model.parameters())
        while ws:
            w = ws.pop()
            w -= eta * w.grad
            w.grad.zero_()


def init_model_optim(nx, nh, ny, eta):
    net, lossf = init_model(nx, nh, ny)
    opt = torch.optim.SGD(net.parameters(), eta)
    return net, lossf, opt
