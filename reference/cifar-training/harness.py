"""The grader's training loop for cifar-training. It runs inside the sandbox with the student's
module and returns raw numbers only: per-epoch training loss and accuracy, and the logits on the
test images after each epoch (it never sees the test labels; the grader scores the logits).

Speed, after the fastest CIFAR-10 trainers: the data stay uint8 tensors, converted and augmented
a whole batch at a time (no per-image PIL pipeline); on a GPU the whole set lives on the device,
in channels_last, and the forward pass runs under bfloat16 autocast.
"""

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


def train_classifier(student, train_x, train_y, test_x, model, epochs, batch_size, lr, momentum=0.0,
                     gamma=None, normalize=False, augment=False, device="cpu", seed=0):
    """SGD on the student's ``model`` class; ``normalize`` uses the student's statistics,
    ``augment`` the student's train_transform / test_transform, ``gamma`` an exponential LR decay."""
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
    curves = {"loss": [], "train_accuracy": []}
    test_scores = []
    n = len(train_x)
    for _ in range(epochs):
        net.train()
        order = torch.randperm(n, generator=gen).to(dev)
        total_loss, correct = 0.0, 0
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            x, y = prepare(train_x[idx], True), train_y[idx]
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
                logits = net(x)
                loss = F.cross_entropy(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == y).sum())
        if scheduler:
            scheduler.step()
        curves["loss"].append(total_loss / n)
        curves["train_accuracy"].append(correct / n)
        _progress(len(curves["loss"]), epochs, total_loss / n)
        net.eval()
        with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            scores = torch.cat([net(prepare(test_x[i:i + 500], False)).float() for i in range(0, len(test_x), 500)])
        test_scores.append(scores.cpu())
    return {"curves": curves, "test_scores": test_scores}
