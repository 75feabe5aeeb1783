"""The grader's training loop for cifar-training. It runs inside the sandbox with the student's
module and returns raw numbers only: per-epoch training loss and accuracy, and the logits on the
test images after each epoch (it never sees the test labels; the grader scores the logits).

What the lab asks students to write is what trains: their ``make_optimizer``, ``make_scheduler``
and ``train_one_epoch`` (one pass over the batches the loop hands them). The loop keeps what is the
grader's: the data, the batches, the loss function it hands over (which records each batch's loss
and accuracy for the curves), the evaluations of ``_Referee`` after each optimizer step (a step
hook, so the student's loop needs no cooperation) and the test scores after each epoch.

``call_*``: the same three functions on a tiny network, no training, each observed for its own
behaviour (the grader runs the same entry on its reference module for the expected values).

Speed, after the fastest CIFAR-10 trainers: the data stay uint8 tensors, converted and augmented
a whole batch at a time (no per-image PIL pipeline); on a GPU the whole set lives on the device.
On a GPU, and on a CPU that computes bfloat16 natively (2.3× a step of this ConvNet on 2 cores),
the network runs in channels_last where its forward pass accepts it, under bfloat16 autocast
(``grader.sandbox.training_speed``).
"""

import math
import os

import torch
import torch.nn.functional as F
from torch import nn

from grader.sandbox.training_speed import (
    autocast_forward,
    bfloat16_native,
    channels_last_if_accepted,
)


def _progress(epoch, epochs, loss):
    """One line the grader shows as a progress bar (display only: it never enters a verdict)."""
    path = os.environ.get("PROGRESS_FILE")
    if path:
        with open(path, "w") as fh:
            fh.write(f"{epoch} {epochs} {loss:.4f}")


def _student_stats(student, train_x, test_x):
    mean, std = student.normalization_stats(train_x.float() / 255, test_x.float() / 255)
    mean = torch.as_tensor(mean, dtype=torch.float32).reshape(1, 3, 1, 1)
    std = torch.as_tensor(std, dtype=torch.float32).reshape(1, 3, 1, 1)
    return mean, std


class _Referee:
    """The lab's early-stopping rule (``early_stop`` in the manifest, numbers from the grader):
    every ``eval_every`` steps the network is scored on the held-out training examples; the run
    stops once that accuracy reaches ``pass_at`` at ``confirm`` evaluations in a row, or is still
    below ``stuck_below`` at as many in a row after ``stuck_after`` of the steps. With
    ``train_gap``, an evaluation is skipped while the training batches since the last one were
    answered more than that below ``pass_at`` (a network on its plateau), and counts as one below
    it; from ``stuck_after`` on every evaluation runs. The grader's verdict remains the test
    accuracy of the scores returned: this only decides when to stop asking."""

    def __init__(self, rule, val_x, val_y, total):
        self.rule, self.val_x, self.val_y, self.total = rule, val_x, val_y, total
        self.steps, self.accuracy, self.skipped, self.row, self.low = [], [], [], 0, 0

    def due(self, step):
        return self.rule is not None and (step % self.rule["eval_every"] == 0 or step == self.total)

    def worth_scoring(self, step, train_accuracy):
        """Whether a due evaluation runs (``False``: skipped, the row of passes starts again)."""
        gap = self.rule.get("train_gap")
        if gap is None or train_accuracy is None or step >= self.rule["stuck_after"] * self.total:
            return True
        if train_accuracy >= self.rule["pass_at"] - gap:
            return True
        self.skipped.append(step)
        self.row = 0
        return False

    def verdict(self, step, accuracy):
        self.steps.append(step)
        self.accuracy.append(accuracy)
        self.row = self.row + 1 if accuracy >= self.rule["pass_at"] else 0
        if self.row >= self.rule["confirm"]:
            return "passed"
        stuck = self.rule["stuck_below"] < self.rule["pass_at"] and accuracy < self.rule["stuck_below"]
        late = step >= self.rule["stuck_after"] * self.total
        self.low = self.low + 1 if stuck and late else 0  # a dip of a learning network is no plateau
        if self.low >= self.rule["confirm"]:
            return "stuck"
        return None


class _Stop(BaseException):
    """Raised from the optimizer's step hook once the referee has decided: it ends the student's
    epoch wherever their loop is (a BaseException, so an ``except Exception`` there lets it pass)."""


class _Recorder:
    """The loss function handed to the student's ``train_one_epoch``: cross-entropy on the logits
    (as float32, whatever autocast made of them), recording each batch's loss and right answers."""

    def __init__(self):
        self.reset()
        self.window_seen, self.window_correct = 0, 0

    def reset(self):
        self.total, self.correct, self.seen, self.last = 0.0, 0, 0, None

    def window(self):
        """(examples, right answers) recorded since the last call: the referee's training accuracy."""
        seen, correct = self.window_seen, self.window_correct
        self.window_seen = self.window_correct = 0
        return seen, correct

    def __call__(self, logits, y):
        loss = F.cross_entropy(logits.float(), y)
        self.last = float(loss.detach())
        self.total += self.last * len(y)
        self.seen += len(y)
        right = int((logits.detach().argmax(1) == y).sum())
        self.correct += right
        self.window_seen += len(y)
        self.window_correct += right
        return loss


class _Batches:
    """One epoch's batches, prepared by the grader (normalised, augmented) as the student's loop asks
    for them; ``len`` is the number of batches."""

    def __init__(self, order, batch_size, train_x, train_y, prepare):
        self.order, self.batch_size, self.train_x, self.train_y, self.prepare = order, batch_size, train_x, train_y, prepare

    def __len__(self):
        return -(-len(self.order) // self.batch_size)

    def __iter__(self):
        for start in range(0, len(self.order), self.batch_size):
            idx = self.order[start:start + self.batch_size]
            yield self.prepare(self.train_x[idx], True), self.train_y[idx]


def train_classifier(student, train_x, train_y, test_x, model, epochs, batch_size, lr, momentum=0.0,
                     gamma=None, weight_decay=0.0, normalize=False, augment=False, device="cpu", seed=0,
                     val_x=None, val_y=None, early_stop=None, test_twice=False):
    """The student's ``model`` class trained by the student's ``make_optimizer`` (``lr``,
    ``momentum``, ``weight_decay``), ``make_scheduler`` (``gamma``; 1, a constant rate, when the
    recipe has no decay) and ``train_one_epoch``; ``normalize`` uses the student's statistics,
    ``augment`` the student's train_transform / test_transform; ``test_twice`` scores the test
    images once more after training (a trained network answers the same twice); ``early_stop`` (with
    ``val_x``/``val_y``, held out of training) stops as soon as the verdict is certain (``_Referee``)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    dev = torch.device(device)
    net = getattr(student, model)().to(dev)
    low = bfloat16_native(dev)
    if normalize:
        mean, std = _student_stats(student, train_x, test_x)
    else:
        mean, std = torch.full((1, 3, 1, 1), 0.5), torch.full((1, 3, 1, 1), 0.5)
    mean, std = mean.to(dev), std.to(dev)
    train_x, train_y, test_x = train_x.to(dev), train_y.to(dev), test_x.to(dev)

    layout = {"channels_last": False}

    def prepare(x_uint8, train):
        x = (x_uint8.float() / 255 - mean) / std
        if augment:
            x = student.train_transform(x) if train else student.test_transform(x)
        return x.contiguous(memory_format=torch.channels_last) if layout["channels_last"] else x

    if low:
        layout["channels_last"] = channels_last_if_accepted(net, lambda: prepare(test_x[:2], False), dev)
        autocast_forward(net, dev)

    optimizer = student.make_optimizer(net, lr, momentum, weight_decay)
    scheduler = student.make_scheduler(optimizer, gamma if gamma else 1.0)

    def scores_on(x_uint8):
        was_training = net.training
        net.eval()
        with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=low):
            scores = torch.cat([net(prepare(x_uint8[i:i + 500], False)).float() for i in range(0, len(x_uint8), 500)])
        net.train(was_training)
        return scores

    curves = {"loss": [], "train_accuracy": []}
    test_scores = []
    n = len(train_x)
    per_epoch = -(-n // batch_size)
    referee = _Referee(early_stop if val_x is not None else None, val_x, val_y, epochs * per_epoch)
    if referee.rule is not None:
        val_x, val_y = val_x.to(dev), val_y.to(dev)
    recorder = _Recorder()
    state = {"step": 0, "stopped": None}

    def after_step(opt, args, kwargs):
        state["step"] += 1
        step = state["step"]
        if referee.rule is not None and recorder.last is not None and not math.isfinite(recorder.last):
            state["stopped"] = {"step": step, "of": referee.total, "reason": "diverged"}
        elif referee.due(step):
            seen, correct = recorder.window()
            if referee.worth_scoring(step, correct / seen if seen else None):
                accuracy = float((scores_on(val_x).argmax(1) == val_y).float().mean())
                reason = referee.verdict(step, accuracy)
                state["stopped"] = {"step": step, "of": referee.total, "reason": reason} if reason else None
        if state["stopped"]:
            raise _Stop

    optimizer.register_step_post_hook(after_step)
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen).to(dev)
        recorder.reset()
        try:
            student.train_one_epoch(net, _Batches(order, batch_size, train_x, train_y, prepare), optimizer,
                                    scheduler, recorder)
        except _Stop:
            pass
        seen = max(recorder.seen, 1)
        curves["loss"].append(recorder.total / seen if recorder.seen else float("nan"))
        curves["train_accuracy"].append(recorder.correct / seen)
        _progress(len(curves["loss"]), epochs, curves["loss"][-1])
        test_scores.append(scores_on(test_x).cpu())
        if state["stopped"]:
            break
    stopped = state["stopped"]
    out = {"curves": curves, "test_scores": test_scores}
    if test_twice:
        out["test_scores_again"] = scores_on(test_x).cpu()
    if referee.rule is not None:
        out["held_out"] = {"steps": referee.steps, "accuracy": referee.accuracy}
        if referee.skipped:
            out["held_out"]["skipped"] = referee.skipped
        if stopped and stopped["step"] < referee.total:
            out["stopped"] = stopped
    return out


# --- the student's optimizer, scheduler and epoch on a tiny network, each for its own behaviour ---

def _tiny(seed, batchnorm=False):
    torch.manual_seed(seed)
    layers = [nn.Linear(6, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3)] if batchnorm else [nn.Linear(4, 3)]
    return nn.Sequential(*layers).double()


def _flat(net):
    return torch.cat([p.detach().flatten() for p in net.parameters()]).clone()


def call_make_optimizer(student, seed, lr, momentum, weight_decay, steps):
    """``make_optimizer`` on a tiny network, stepped ``steps`` times with gradients drawn here (no
    loss, no data): the weights after each step, and the momentum and weight decay those steps
    show. SGD's step is w ← w − lr·b with b = momentum·b_prev + g + weight_decay·w, so both are
    solved (least squares) from the steps themselves, whatever the optimizer stores."""
    net = _tiny(seed)
    gen = torch.Generator().manual_seed(seed)
    optimizer = student.make_optimizer(net, lr, momentum, weight_decay)
    params = list(net.parameters())
    weights, rows, targets = [], [], []
    w, previous = _flat(net), None
    for _ in range(steps):
        grads = [torch.randn(p.shape, generator=gen, dtype=p.dtype) for p in params]
        for p, g in zip(params, grads):
            p.grad = g.clone()
        optimizer.step()
        now = _flat(net)
        direction = (w - now) / lr
        rows.append(torch.stack([previous if previous is not None else torch.zeros_like(w), w], 1))
        targets.append(direction - torch.cat([g.flatten() for g in grads]))
        weights.append(now)
        w, previous = now, direction
    solved = torch.linalg.lstsq(torch.cat(rows), torch.cat(targets)[:, None]).solution.flatten()
    return {"weights": torch.stack(weights), "momentum": round(float(solved[0]), 9) + 0.0,
            "weight_decay": round(float(solved[1]), 9) + 0.0}


def call_make_scheduler(student, lr, gamma, epochs):
    """``make_scheduler`` on SGD at rate ``lr``, stepped once an epoch: the rate after each."""
    optimizer = torch.optim.SGD(_tiny(0).parameters(), lr=lr)
    scheduler = student.make_scheduler(optimizer, gamma)
    rates = []
    for _ in range(epochs):
        optimizer.step()
        scheduler.step()
        rates.append(optimizer.param_groups[0]["lr"])
    return {"rates": rates}


def call_train_one_epoch(student, seed, n, batch_size, lr, gamma):
    """``train_one_epoch`` on a tiny network with BatchNorm handed over in eval mode (as after an
    evaluation), SGD with momentum 0.9 and exponential decay built here, a list of batches: the
    optimizer steps it took, the rate after it, the mode of its forward passes, the weights after."""
    net = _tiny(seed, batchnorm=True)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (n,), generator=gen)
    net.eval()
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma)
    steps, modes = [0], set()
    optimizer.register_step_post_hook(lambda opt, args, kwargs: steps.__setitem__(0, steps[0] + 1))
    net.register_forward_pre_hook(lambda module, args: modes.add("train mode" if module.training else "eval mode"))
    batches = [(x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, n, batch_size)]
    student.train_one_epoch(net, batches, optimizer, scheduler, nn.CrossEntropyLoss())
    mode = " and ".join(sorted(modes)) or "no forward pass"
    return {"steps": steps[0], "lr": optimizer.param_groups[0]["lr"], "mode": mode, "weights": _flat(net)}
