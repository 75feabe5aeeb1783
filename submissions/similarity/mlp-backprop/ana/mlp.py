"""mlp-backprop hand-in (Ana)."""

import torch


def init_params(nx, nh, ny):
    params = {}
    params["Wh"] = torch.randn(nh, nx) * 0.3
    params["bh"] = torch.zeros(nh)
    params["Wy"] = torch.randn(ny, nh) * 0.3
    params["by"] = torch.zeros(ny)
    return params


def softmax(z):
    # subtract the max of each row so that exp never overflows
    z = z - z.max(dim=1, keepdim=True)[0]
    e = torch.exp(z)
    return e / e.sum(dim=1, keepdim=True)


def forward(params, X):
    outputs = {"X": X}
    outputs["htilde"] = torch.mm(X, params["Wh"].t()) + params["bh"]
    outputs["h"] = torch.tanh(outputs["htilde"])
    outputs["ytilde"] = torch.mm(outputs["h"], params["Wy"].t()) + params["by"]
    outputs["yhat"] = softmax(outputs["ytilde"])
    return outputs["yhat"], outputs


def loss_accuracy(Yhat, Y):
    L = -torch.mean(torch.sum(Y * torch.log(Yhat), dim=1))
    _, indsY = torch.max(Y, 1)
    _, indsYhat = torch.max(Yhat, 1)
    acc = torch.sum(indsY == indsYhat).item() / Y.shape[0]
    return L, acc


def backward(params, outputs, Y):
    N = Y.shape[0]
    grads = {}
    delta_y = (outputs["yhat"] - Y) / N
    grads["Wy"] = torch.mm(delta_y.t(), outputs["h"])
    grads["by"] = torch.sum(delta_y, 0)
    delta_h = torch.mm(delta_y, params["Wy"]) * (1 - outputs["h"] ** 2)
    grads["Wh"] = torch.mm(delta_h.t(), outputs["X"])
    grads["bh"] = torch.sum(delta_h, 0)
    return grads


def sgd(params, grads, eta):
    for k in params:
        params[k] = params[k] - eta * grads[k]
    return params


def init_params_autograd(nx, nh, ny):
    params = init_params(nx, nh, ny)
    for v in params.values():
        v.requires_grad = True
    return params


def sgd_autograd(params, eta):
    with torch.no_grad():
        for v in params.values():
            v -= eta * v.grad
            v.grad.zero_()
    return params


def init_model(nx, nh, ny):
    model = torch.nn.Sequential(torch.nn.Linear(nx, nh), torch.nn.Tanh(), torch.nn.Linear(nh, ny))
    loss = torch.nn.CrossEntropyLoss()
    return model, loss


def sgd_model(model, eta):
    with torch.no_grad():
        for param in model.parameters():
            param -= eta * param.grad
    model.zero_grad()


def init_model_optim(nx, nh, ny, eta):
    model, loss = init_model(nx, nh, ny)
    optim = torch.optim.SGD(model.parameters(), lr=eta)
    return model, loss, optim
