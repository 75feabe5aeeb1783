"""mlp-backprop hand-in whose backward returns zeros when the backward check calls it, and
autograd's gradients when the lab's training loop calls it (it looks for harness.py on the call
stack): it earned the training checks. Expected: backward fails (zeros are not the gradients),
and the training-by-hand checks score zero ("uses autograd"): autograd is forbidden wherever the
loop calls backward, not only under the check."""

import torch


def init_params(nx, nh, ny):
    params = {}
    params["Wh"] = torch.randn(nh, nx) * 0.3
    params["bh"] = torch.zeros(nh)
    params["Wy"] = torch.randn(ny, nh) * 0.3
    params["by"] = torch.zeros(ny)
    return params


def softmax(z):
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
    import sys
    frame, training = sys._getframe(1), False
    while frame is not None:
        training = training or frame.f_code.co_filename == "harness.py"
        frame = frame.f_back
    if not training:
        return {k: torch.zeros_like(v) for k, v in params.items()}
    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
    yhat, _ = forward(leaves, outputs["X"])
    loss, _ = loss_accuracy(yhat, Y)
    grads = torch.autograd.grad(loss, [leaves[k] for k in ("Wh", "bh", "Wy", "by")])
    return dict(zip(("Wh", "bh", "Wy", "by"), grads))


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
