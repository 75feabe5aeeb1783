"""Dara Okafor, lab 1 of the deep learning course.

I keep the network as a list of layers [(W, b), (W, b)] internally and convert at the edges.
"""
import torch

STD = 0.3


def _layer(n_in, n_out):
    weight = torch.randn(n_out, n_in).mul_(STD)
    return weight, torch.zeros(n_out)


def init_params(nx, nh, ny):
    (Wh, bh), (Wy, by) = _layer(nx, nh), _layer(nh, ny)
    return {"Wh": Wh, "bh": bh, "Wy": Wy, "by": by}


def _affine(inputs, weight, bias):
    return torch.addmm(bias, inputs, weight.t())


def _softmax_rows(scores):
    scores = scores - scores.max(1, keepdim=True).values
    return torch.softmax(scores, 1)


def forward(params, X):
    layers = [(params["Wh"], params["bh"]), (params["Wy"], params["by"])]
    htilde = _affine(X, *layers[0])
    h = torch.tanh(htilde)
    ytilde = _affine(h, *layers[1])
    yhat = _softmax_rows(ytilde)
    return yhat, dict(X=X, htilde=htilde, h=h, ytilde=ytilde, yhat=yhat)


def loss_accuracy(Yhat, Y):
    log_likelihood = torch.log(Yhat.clamp_min(1e-15)).mul(Y).sum(1)
    loss = log_likelihood.mean().neg()
    accuracy = Yhat.argmax(1).eq(Y.argmax(1)).float().mean().item()
    return loss, accuracy


def backward(params, outputs, Y):
    count = float(Y.shape[0])
    err_out = outputs["yhat"].sub(Y).div(count)
    err_hid = err_out.mm(params["Wy"]).mul(1 - outputs["h"].square())
    grads = dict(Wy=err_out.t().mm(outputs["h"]), by=err_out.sum(0))
    grads.update(Wh=err_hid.t().mm(outputs["X"]), bh=err_hid.sum(0))
    return grads


def sgd(params, grads, eta):
    updated = dict(params)
    for key in ("Wh", "bh", "Wy", "by"):
        updated[key] = params[key].sub(grads[key], alpha=eta)
    return updated


def init_params_autograd(nx, nh, ny):
    return {k: v.detach().requires_grad_() for k, v in init_params(nx, nh, ny).items()}


def sgd_autograd(params, eta):
    with torch.no_grad():
        for key in list(params):
            params[key].add_(params[key].grad, alpha=-eta)
            params[key].grad.zero_()
    return params


def init_model(nx, nh, ny):
    layers = [torch.nn.Linear(nx, nh), torch.nn.Tanh(), torch.nn.Linear(nh, ny)]
    return torch.nn.Sequential(*layers), torch.nn.CrossEntropyLoss(reduction="mean")


def sgd_model(model, eta):
    with torch.no_grad():
        for weight in model.parameters():
            weight.sub_(eta * weight.grad)
    model.zero_grad()


def init_model_optim(nx, nh, ny, eta):
    model, criterion = init_model(nx, nh, ny)
    optimizer = torch.optim.SGD(params=model.parameters(), lr=eta, momentum=0.0)
    return model, criterion, optimizer
