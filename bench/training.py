"""Training on the CPU budget (cifar-training), all in one run on this machine:

1. images/s of the grader's loop (uint8 tensors, batched augmentation) against a plain
   ``DataLoader`` + ``torchvision.transforms`` loop, same model (ConvNetCrop), same images;
2. each variant's time to its calibrated threshold (the lab's reference, the grader's harness),
   on the CPU budget, and on the GPU budget when torch sees a GPU;
3. broken models against the threshold: the data set must fail them and pass the reference;
4. the whole lab on the correct hand-in, training included, through the sandbox.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from rich.table import Table
from torch import nn

ROOT = Path(__file__).resolve().parents[1]


def _setup():
    from grader.api import load_lab

    lab = load_lab("cifar-training")
    namespace: dict = {}
    exec(compile(lab.harness_source, "harness.py", "exec"), namespace)
    check = next(c for c in lab.checks if c.spec.id == "train-baseline")
    budget = check.params.budgets["cpu"]
    data = lab.reference.cifar10(**budget.dataset_args)
    tensors = {k: torch.from_numpy(np.asarray(v)) for k, v in data.items() if k != "classes"}
    return lab, namespace["train_classifier"], tensors, data


def _accuracy(scores, labels) -> float:
    return float((scores.argmax(1).numpy() == labels).mean())


def loader_comparison(lab, train, t) -> Table:
    torch.set_num_threads(2)
    n = len(t["train_x"])
    started = time.perf_counter()
    train(lab.reference, t["train_x"], t["train_y"], t["test_x"][:1], model="ConvNetCrop", epochs=1,
          batch_size=32, lr=0.05, augment=True)
    ours = n / (time.perf_counter() - started)

    from PIL import Image
    from torch.utils.data import DataLoader, Dataset
    from torchvision import transforms

    class Images(Dataset):
        def __init__(self, x, y, transform):
            self.x, self.y, self.transform = x.permute(0, 2, 3, 1).numpy(), y, transform

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return self.transform(Image.fromarray(self.x[i])), self.y[i]

    pipeline = transforms.Compose([transforms.RandomCrop(28), transforms.RandomHorizontalFlip(), transforms.ToTensor(),
                                   transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
    torch.manual_seed(0)
    model = lab.reference.ConvNetCrop()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    started = time.perf_counter()
    for x, y in DataLoader(Images(t["train_x"], t["train_y"], pipeline), batch_size=32, shuffle=True):
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    plain = n / (time.perf_counter() - started)
    table = Table(title=f"Training loop throughput, ConvNetCrop with random crop + flip, {n} images, 1 epoch, CPU")
    table.add_column("loop")
    table.add_column("images/s", justify="right")
    table.add_row("gradelab harness: uint8 tensors, batched augmentation", f"{ours:.0f}")
    table.add_row("DataLoader + torchvision.transforms (PIL per image)", f"{plain:.0f}")
    table.caption = f"ratio {ours / plain:.2f}×"
    return table


def time_to_threshold(lab, train, budget: str = "cpu", device: str = "cpu") -> Table:
    """Each variant on the reference under one budget and device: accuracy per epoch, and when it
    first reaches the threshold calibrated for that budget (the manifest's default if uncalibrated)."""
    checks = [c for c in lab.checks if c.spec.kind == "training"]
    dataset_args = checks[0].params.budgets[budget].dataset_args
    data = lab.reference.cifar10(**dataset_args)
    t = {k: torch.from_numpy(np.asarray(v)) for k, v in data.items() if k != "classes"}
    sizes = f"{len(t['train_x'])} images"
    table = Table(title=f"Time to threshold, reference, {budget} budget ({sizes}), {device}")
    for col in ("variant", "threshold", "accuracy per epoch", "first epoch at threshold", "s per epoch", "s to threshold"):
        table.add_column(col)
    for check in checks:
        args = {**check.params.args, **check.params.budgets[budget].args, "device": device}
        calibrated = lab.calibration.get(check.spec.id, {}).get(budget, {}).get("threshold")
        threshold = check.params.threshold if calibrated is None else calibrated
        started = time.perf_counter()
        out = train(lab.reference, t["train_x"], t["train_y"], t["test_x"], **args)
        per_epoch = (time.perf_counter() - started) / args["epochs"]
        accs = [_accuracy(s, data["test_y"]) for s in out["test_scores"]]
        first = next((i + 1 for i, a in enumerate(accs) if a >= threshold), None)
        table.add_row(check.spec.id, f"{threshold:.0%}" + ("" if calibrated is not None else " (uncalibrated)"),
                      " ".join(f"{a:.0%}" for a in accs), str(first or "not reached"), f"{per_epoch:.2f}",
                      f"{first * per_epoch:.1f}" if first else "—")
    return table


class _Broken:
    """The reference module with one thing broken, as a hand-in would break it."""

    def __init__(self, reference, kind):
        self.reference, self.kind = reference, kind

    def __getattr__(self, name):
        return getattr(self.reference, name)

    def ConvNet(self):
        model = self.reference.ConvNet()
        if self.kind == "no ReLU":
            model.features = nn.Sequential(*[m for m in model.features if not isinstance(m, nn.ReLU)])
            model.classifier = nn.Sequential(*[m for m in model.classifier if not isinstance(m, nn.ReLU)])
        if self.kind == "frozen weights":
            for p in model.parameters():
                p.requires_grad_(False)
            model.classifier[-1].weight.requires_grad_(True)  # SGD needs one trainable tensor
        if self.kind == "dropout left on at test time":
            model.classifier.insert(3, _AlwaysDropout())
        return model


class _AlwaysDropout(nn.Module):
    def forward(self, x):
        return nn.functional.dropout(x, 0.5, training=True)


def broken_models(lab, train, t, data) -> Table:
    threshold = lab.calibration.get("train-baseline", {}).get("cpu", {}).get("threshold", 0.5)
    args = {**next(c for c in lab.checks if c.spec.id == "train-baseline").params.args}
    table = Table(title=f"Broken models on the baseline recipe, CPU budget (threshold {threshold:.0%})")
    for col in ("model", "test accuracy", "verdict"):
        table.add_column(col)
    rows = [("reference", lab.reference, t["train_y"])]
    for kind in ("no ReLU", "frozen weights", "dropout left on at test time"):
        rows.append((kind, _Broken(lab.reference, kind), t["train_y"]))
    rows.append(("labels shuffled", lab.reference, t["train_y"][torch.randperm(len(t["train_y"]))]))
    for name, module, labels in rows:
        out = train(module, t["train_x"], labels, t["test_x"], **args)
        acc = _accuracy(out["test_scores"][-1], data["test_y"])
        table.add_row(name, f"{acc:.1%}", "passes" if acc >= threshold else "fails")
    return table


def whole_hand_in() -> Table:
    from grader.api import load_lab
    from grader.grading.engine import grade_submission
    from grader.grading.run import Run
    from grader.options import RunOptions

    with Run(load_lab("cifar-training"), RunOptions(train=True, budget="cpu", device="cpu")) as run:
        run.sandbox.warm()  # the fork server's imports are not the hand-in's time
        started = time.perf_counter()
        result = grade_submission(run, ROOT / "submissions" / "cifar-training" / "correct")
        total = time.perf_counter() - started
    table = Table(title="cifar-training, correct hand-in, every check, CPU budget, through the sandbox")
    table.add_column("check")
    table.add_column("status")
    table.add_column("s", justify="right")
    for c in result.checks:
        table.add_row(c.id, c.status.value, f"{c.duration_s:.1f}")
    table.add_row("[bold]whole hand-in[/bold]", f"{result.score:g}/{result.max_score:g}", f"[bold]{total:.1f}[/bold]")
    return table


def main():
    """Yields each table as soon as it is measured (the whole run takes minutes)."""
    lab, train, t, data = _setup()
    yield loader_comparison(lab, train, t)
    yield time_to_threshold(lab, train, "cpu", "cpu")
    if torch.cuda.is_available():  # on a lent GPU: the gpu budget, where the whole set lives on the device
        yield time_to_threshold(lab, train, "gpu", "cuda")
    else:
        yield Table(title="Time to threshold on a GPU: skipped, torch sees no CUDA device")
    yield broken_models(lab, train, t, data)
    yield whole_hand_in()


if __name__ == "__main__":
    from rich.console import Console

    for table in main():
        Console(width=140).print(table)
