"""The grader's training loops for mlp-backprop. They run inside the sandbox, with the student's
module, and return raw numbers only: per-epoch curves, the test scores after each epoch, and
(for the hand-written variants) the final parameters. They never see the test labels; the
grader computes test accuracy in its own process.

Each loop is the one the lab handout describes, calling the student's functions where the
handout asks the student to write them. Loss and accuracy on the training set are computed
here, not with the student's ``loss_accuracy``, so a wrong loss cannot hide a working network.
"""

import torch

from grader.sandbox.metrics import probability_metrics


def _shuffled_batches(n, batch_size, generator):
    order = torch.randperm(n, generator=generator)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def _train_metrics(yhat, labels):
    # gradelab's own function, not written here: this file ships in the student edition, and the
    # loss and accuracy are what loss_accuracy asks students to write.
    return probability_metrics(yhat, labels)


def _as_float(params):
    return {k: v.detach().double().clone() if isinstance(v, torch.Tensor) else v for k, v in params.items()}


def _end_of_epoch(student, params, train_x, train_y, test_x, curves, test_scores):
    """Loss and accuracy on the whole training set, and the test scores, with the student's forward."""
    with torch.no_grad():
        yhat, _ = student.forward(params, train_x)
        loss, acc = _train_metrics(yhat, train_y)
        curves["loss"].append(loss)
        curves["train_accuracy"].append(acc)
        test_scores.append(student.forward(params, test_x)[0])


def train_manual(student, train_x, train_y, test_x, n_h, eta, batch_size, epochs, seed):
    """init_params → (forward → backward → sgd) per batch: everything written by hand."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    n_y = int(train_y.max()) + 1
    Y = torch.nn.functional.one_hot(train_y, n_y).double()
    params = _as_float(student.init_params(train_x.shape[1], n_h, n_y))
    curves = {"loss": [], "train_accuracy": []}
    test_scores = []
    for _ in range(epochs):
        for idx in _shuffled_batches(len(train_x), batch_size, gen):
            _, outputs = student.forward(params, train_x[idx])
            grads = student.backward(params, outputs, Y[idx])
            params = student.sgd(params, grads, eta)
        _end_of_epoch(student, params, train_x, train_y, test_x, curves, test_scores)
    return {"curves": curves, "test_scores": test_scores, "params": params}


def train_autograd(student, train_x, train_y, test_x, n_h, eta, batch_size, epochs, seed):
    """init_params_autograd → (forward → loss_accuracy → .backward() → sgd_autograd) per batch."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    n_y = int(train_y.max()) + 1
    Y = torch.nn.functional.one_hot(train_y, n_y).double()
    params = student.init_params_autograd(train_x.shape[1], n_h, n_y)
    params = {k: v.detach().double().requires_grad_(True) for k, v in params.items()}
    curves = {"loss": [], "train_accuracy": []}
    test_scores = []
    for _ in range(epochs):
        for idx in _shuffled_batches(len(train_x), batch_size, gen):
            yhat, _ = student.forward(params, train_x[idx])
            loss, _ = student.loss_accuracy(yhat, Y[idx])
            loss.backward()
            params = student.sgd_autograd(params, eta)
        _end_of_epoch(student, params, train_x, train_y, test_x, curves, test_scores)
    return {"curves": curves, "test_scores": test_scores, "params": _as_float(params)}


def _train_module(model, step, loss_fn, train_x, train_y, test_x, batch_size, epochs, gen):
    curves = {"loss": [], "train_accuracy": []}
    test_scores = []
    for _ in range(epochs):
        model.train()
        for idx in _shuffled_batches(len(train_x), batch_size, gen):
            loss = loss_fn(model(train_x[idx]), train_y[idx])
            step(loss)
        model.eval()
        with torch.no_grad():
            yhat = torch.softmax(model(train_x).double(), dim=1)
            loss, acc = _train_metrics(yhat, train_y)
            curves["loss"].append(loss)
            curves["train_accuracy"].append(acc)
            test_scores.append(model(test_x))
    return {"curves": curves, "test_scores": test_scores}


def train_nn(student, train_x, train_y, test_x, n_h, eta, batch_size, epochs, seed):
    """init_model → (model → loss → .backward() → sgd_model) per batch: torch.nn, update by hand."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model, loss_fn = student.init_model(train_x.shape[1], n_h, int(train_y.max()) + 1)
    model = model.double()

    def step(loss):
        model.zero_grad()
        loss.backward()
        student.sgd_model(model, eta)

    return _train_module(model, step, loss_fn, train_x, train_y, test_x, batch_size, epochs, gen)


def train_optim(student, train_x, train_y, test_x, n_h, eta, batch_size, epochs, seed):
    """init_model_optim → (optimizer.zero_grad → loss.backward → optimizer.step) per batch."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model, loss_fn, optimizer = student.init_model_optim(train_x.shape[1], n_h, int(train_y.max()) + 1, eta)
    model = model.double()

    def step(loss):
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return _train_module(model, step, loss_fn, train_x, train_y, test_x, batch_size, epochs, gen)
