"""The grader's training loop for cifar-training. It runs inside the sandbox with the student's
module and returns raw numbers only: per-epoch training loss and accuracy, and the logits on the
test images after each epoch (it never sees the test labels; the grader scores the logits).

Speed, after the fastest CIFAR-10 trainers: the data stay uint8 tensors, converted and augmented
a whole batch at a time (no per-image PIL pipeline); on a GPU the whole set lives on the device,
in channels_last, and the forward pass runs under bfloat16 autocast.
"""

import math
import os

import torch
import torch.nn.functional as F


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
    below ``stuck_below`` after ``stuck_after`` of the steps. The grader's verdict remains the test
    accuracy of the scores returned: this only decides when to stop asking."""

    def __init__(self, rule, val_x, val_y, total):
        self.rule, self.val_x, self.val_y, self.total = rule, val_x, val_y, total
        self.steps, self.accuracy, self.row = [], [], 0

    def due(self, step):
        return self.rule is not None and (step % self.rule["eval_every"] == 0 or step == self.total)

    def verdict(self, step, accuracy):
        self.steps.append(step)
        self.accuracy.append(accuracy)
        self.row = self.row + 1 if accuracy >= self.rule["pass_at"] else 0
        if self.row >= self.rule["confirm"]:
            return "passed"
        stuck = self.rule["stuck_below"] < self.rule["pass_at"] and accuracy < self.rule["stuck_below"]
        if stuck and step >= self.rule["stuck_after"] * self.total:
            return "stuck"
        return None


def train_classifier(student, train_x, train_y, test_x, model, epochs, batch_size, lr, momentum=0.0,
                     gamma=None, normalize=False, augment=False, device="cpu", seed=0, val_x=None, val_y=None,
                     early_stop=None):
    """SGD on the student's ``model`` class; ``normalize`` uses the student's statistics,
    ``augment`` the student's train_transform / test_transform, ``gamma`` an exponential LR decay;
    ``early_stop`` (with ``val_x``/``val_y``, held out of training) stops as soon as the verdict is
    certain (``_Referee``)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    dev = torch.device(device)
    net = getattr(student, model)().to(dev)
    if dev.type == "cuda":
        net = net.to(memory_format=torch.channels_last)
    if normalize:
        mean, std = _student_stats(student, train_x, test_x)
    else:
        mean, std = torch.full((1, 3, 1, 1), 0.5), torch.full((1, 3, 1, 1), 0.5)
    mean, std = mean.to(dev), std.to(dev)
    train_x, train_y, test_x = train_x.to(dev), train_y.to(dev), test_x.to(dev)

    def prepare(x_uint8, train):
        x = (x_uint8.float() / 255 - mean) / std
        if augment:
            x = student.train_transform(x) if train else student.test_transform(x)
        return x.contiguous(memory_format=torch.channels_last) if dev.type == "cuda" else x

    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma) if gamma else None
    def scores_on(x_uint8):
        net.eval()
        with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            scores = torch.cat([net(prepare(x_uint8[i:i + 500], False)).float() for i in range(0, len(x_uint8), 500)])
        net.train()
        return scores

    curves = {"loss": [], "train_accuracy": []}
    test_scores = []
    n = len(train_x)
    per_epoch = -(-n // batch_size)
    referee = _Referee(early_stop if val_x is not None else None, val_x, val_y, epochs * per_epoch)
    if referee.rule is not None:
        val_x, val_y = val_x.to(dev), val_y.to(dev)
    step, stopped = 0, None
    for _ in range(epochs):
        net.train()
        order = torch.randperm(n, generator=gen).to(dev)
        total_loss, correct, seen = 0.0, 0, 0
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            x, y = prepare(train_x[idx], True), train_y[idx]
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
                logits = net(x)
                loss = F.cross_entropy(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            value = float(loss.detach())
            total_loss += value * len(idx)
            seen += len(idx)
            correct += int((logits.argmax(1) == y).sum())
            if referee.rule is not None and not math.isfinite(value):
                stopped = {"step": step, "of": referee.total, "reason": "diverged"}
            elif referee.due(step):
                accuracy = float((scores_on(val_x).argmax(1) == val_y).float().mean())
                reason = referee.verdict(step, accuracy)
                stopped = {"step": step, "of": referee.total, "reason": reason} if reason else None
            if stopped:
                break
        if scheduler:
            scheduler.step()
        curves["loss"].append(total_loss / seen)
        curves["train_accuracy"].append(correct / seen)
        _progress(len(curves["loss"]), epochs, total_loss / seen)
        test_scores.append(scores_on(test_x).cpu())
        if stopped:
            break
    out = {"curves": curves, "test_scores": test_scores}
    if referee.rule is not None:
        out["held_out"] = {"steps": referee.steps, "accuracy": referee.accuracy}
        if stopped and stopped["step"] < referee.total:
            out["stopped"] = stopped
    return out
