"""The grader's code for vgg-batchnorm that runs inside the sandbox with the student's module. It
returns raw numbers only; verdicts are computed in the grader's process.

Two kinds of entry:

- ``train_run``: the grader's own training loop (Adam, CIFAR-10 normalised with mean 0.5 and std
  0.5, as the course does) for one model at one learning rate. It returns the loss of every step
  and the logits on the test images at a few points; it never sees the test labels. Speed, after
  the fastest CIFAR-10 trainers: uint8 tensors converted a batch at a time, bfloat16 autocast where
  the device computes it natively (a GPU, a CPU with AVX512-BF16: 1.3× a VGG-A step on 2 cores),
  and on a GPU the whole set on the device, channels_last where the student's forward accepts it,
  and no host synchronisation per step.
- ``call_*``: the student's helper functions on objects built here (a small network, an
  optimizer, a ``DataLoader`` with a partial last batch), the way the handout calls them. The
  grader runs the same entry on its reference module, in its own process, for the expected values.
"""

import os

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from grader.sandbox.training_speed import bfloat16_native, channels_last_if_accepted


def _progress(epoch, epochs, loss):
    """One line the grader shows as a progress bar (display only: it never enters a verdict)."""
    path = os.environ.get("PROGRESS_FILE")
    if path:
        with open(path, "w") as fh:
            fh.write(f"{epoch} {epochs} {loss:.4f}")


def train_run(student, train_x, train_y, test_x, model, lr, epochs, batch_size, evals=1, device="cpu", seed=0):
    """Adam on the student's ``model`` class at one learning rate. The loss of every step; the test
    logits at ``evals`` evenly spaced steps (the last one included). Partial batches are dropped:
    a BatchNorm layer cannot normalise a batch of one."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    low = bfloat16_native(dev)  # on a CPU without native bfloat16, float32
    net = getattr(student, model)().to(dev)
    train_x, train_y, test_x = train_x.to(dev), train_y.to(dev), test_x.to(dev)
    layout = {"channels_last": False}

    def prepare(x_uint8):
        x = (x_uint8.float() / 255 - 0.5) / 0.5
        return x.contiguous(memory_format=torch.channels_last) if layout["channels_last"] else x

    if cuda:  # on the CPU channels_last makes VGG's step slower (grader.sandbox.training_speed)
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels once
        layout["channels_last"] = channels_last_if_accepted(net, lambda: prepare(test_x[:2]), dev)

    try:  # the fused kernel: Adam's step over VGG-A's 9.8 M weights in 6 ms on 2 cores instead of 38
        optimizer = torch.optim.Adam(net.parameters(), lr=lr, fused=True)
    except (RuntimeError, ValueError):  # a parameter the fused kernel does not take (dtype, device)
        optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    per_epoch = len(train_x) // batch_size
    total = epochs * per_epoch
    eval_at = {round(total * (i + 1) / evals) for i in range(evals)}
    losses, correct, test_scores, eval_steps = [], [], [], []
    step = 0
    net.train()
    for epoch in range(epochs):
        order = torch.randperm(len(train_x), generator=gen).to(dev)
        for start in range(0, per_epoch * batch_size, batch_size):
            idx = order[start:start + batch_size]
            x, y = prepare(train_x[idx]), train_y[idx]
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=low):
                logits = net(x)
                loss = F.cross_entropy(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
            correct.append((logits.argmax(1) == y).sum())
            step += 1
            if step in eval_at:
                net.eval()
                with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=low):
                    scores = torch.cat([net(prepare(test_x[i:i + 500])).float() for i in range(0, len(test_x), 500)])
                test_scores.append(scores.cpu())
                eval_steps.append(step)
                net.train()
        _progress(epoch + 1, epochs, float(losses[-1]) if losses else float("nan"))
    loss_values = torch.stack(losses).float().cpu().tolist() if losses else []
    accuracy = (torch.stack(correct).float().cpu() / batch_size).tolist() if correct else []
    return {"losses": loss_values, "train_accuracy": accuracy, "test_scores": test_scores,
            "eval_steps": eval_steps}


# --- the student's helpers on objects built here ----------------------------------------------------

class SmallVGG(nn.Module):
    """Two VGG stages on 8×8 images: conv 8 | M | conv 16 | M, then 64 → 32 → 10 (``features`` and
    ``classifier`` as in VGG_A, so code written for VGG_A finds its last Linear layer)."""

    def __init__(self, batchnorm=False):
        super().__init__()
        norm = (lambda c: [nn.BatchNorm2d(c)]) if batchnorm else (lambda c: [])
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), *norm(8), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(8, 16, 3, padding=1), *norm(16), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


def _network(seed, batchnorm, dtype=torch.float64):
    torch.manual_seed(seed)
    return SmallVGG(batchnorm).to(dtype), torch.Generator().manual_seed(seed)


def call_get_accuracy(student, seed, n, batch_size):
    """``get_accuracy`` on a network with BatchNorm handed over in train mode (as after training),
    whose running statistics differ from its batches' (so a forward in train mode gives other
    answers), and a loader whose last batch is partial and entirely right (so averaging the batches'
    accuracies gives another answer)."""
    net, gen = _network(seed, batchnorm=True, dtype=torch.float32)
    x = torch.randn(n, 3, 8, 8, generator=gen)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-1.0, 1.0, generator=gen)
                m.running_var.uniform_(0.2, 4.0, generator=gen)
        net.eval()
        predicted = net(x).argmax(1)
    right = torch.rand(n, generator=gen) < 0.6
    right[n - (n % batch_size or batch_size):] = True
    wrong = (predicted + torch.randint(1, 10, (n,), generator=gen)) % 10
    y = torch.where(right, predicted, wrong)
    net.train()
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=False)
    return {"accuracy": student.get_accuracy(net, loader)}


def _loss_kind(value):
    if isinstance(value, torch.Tensor) and value.requires_grad:
        return "a tensor that keeps its graph"
    return "a number" if isinstance(value, (int, float, torch.Tensor)) else type(value).__name__


def _scalar(value):
    return isinstance(value, (int, float)) or isinstance(value, torch.Tensor) and value.numel() == 1


def call_train(student, seed, n, batch_size, epochs, batchnorm):
    """``train`` on a small float64 network with SGD (momentum 0.9), handed over in eval mode (as
    ``get_accuracy`` leaves a model), and a loader in a fixed order."""
    net, gen = _network(seed, batchnorm)
    x = torch.randn(n, 3, 8, 8, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 10, (n,), generator=gen)
    net.eval()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=False)
    out = student.train(net, optimizer, nn.CrossEntropyLoss(), loader, epochs)
    losses, grads = out if isinstance(out, tuple) and len(out) == 2 else (out, None)
    kinds, values = [], losses
    if isinstance(losses, (list, tuple)):
        kinds = sorted({_loss_kind(v) for v in losses})
        values = [float(v.detach()) if isinstance(v, torch.Tensor) else float(v) if _scalar(v) else v
                  for v in losses]
    return {"losses": values, "grads": grads, "loss_kind": ", ".join(kinds)}


def _measure(student_fn, seed, batchnorm, distances):
    net, gen = _network(seed, batchnorm)
    x = torch.randn(16, 3, 8, 8, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 10, (16,), generator=gen)
    before = [p.detach().clone() for p in net.parameters()]
    value = student_fn(net, nn.CrossEntropyLoss(), x, y, list(distances))
    same = all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    return {"value": value, "weights": "left as they were" if same else "moved", "kind": _returned_kind(value)}


def _returned_kind(value):
    """Numbers, or tensors still attached to an autograd graph (the graph of every gradient kept alive)."""
    items = value if isinstance(value, (list, tuple)) else [value]
    return "tensors that keep their graph" if any(isinstance(v, torch.Tensor) and v.requires_grad for v in items) \
        else "numbers"


def call_gradient_predictiveness(student, seed, batchnorm, distances):
    return _measure(student.gradient_predictiveness, seed, batchnorm, distances)


def call_beta_smoothness(student, seed, batchnorm, distances):
    return _measure(student.beta_smoothness, seed, batchnorm, distances)
