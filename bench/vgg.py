"""VGG-A on the vgg-batchnorm budgets, all in one run on this machine:

1. images/s of the grader's training loop (uint8 tensors converted a batch at a time; on a GPU the
   whole set on the device, channels_last, bfloat16 autocast) against a plain ``DataLoader`` +
   ``torchvision.transforms`` loop, same model (VGG_A and VGG_A_BatchNorm), same images, Adam;
2. time per hand-in: the correct hand-in, every check, through the sandbox, on each budget this
   machine runs (smoke and cpu; gpu when torch sees a GPU), with the training comparison's verdict.

``python -m bench.vgg --gpu`` is the one command for a machine with a GPU: it calibrates the lab's
``gpu`` budget (``gradelab calibrate vgg-batchnorm --budget gpu --seed 0 --seed 1 --seed 2``,
written to the lab's calibration.yaml) and then prints the tables above for the GPU.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
CORRECT = ROOT / "submissions" / "vgg-batchnorm" / "correct"
CHECK = "train-landscape"
SEEDS = (0, 1, 2)  # the limits come from the worst of them


def _setup():
    from grader.api import load_lab

    lab = load_lab("vgg-batchnorm")
    namespace: dict = {}
    exec(compile(lab.harness_source, "harness.py", "exec"), namespace)
    return lab, namespace["train_run"]


def loader_comparison(lab, train_run, device: str, n: int, batch_size: int) -> Table:
    """The grader's loop against a plain DataLoader loop, one pass over ``n`` images each."""
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset
    from torchvision import transforms

    data = lab.reference.cifar10(n_train=n, n_test=1)
    x, y = torch.from_numpy(data["train_x"]), torch.from_numpy(data["train_y"])
    dev = torch.device(device)

    class Images(Dataset):
        def __init__(self):
            self.x = x.permute(0, 2, 3, 1).numpy()
            self.transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,) * 3, (0.5,) * 3)])

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return self.transform(Image.fromarray(self.x[i])), int(y[i])

    def plain(model_name: str) -> float:
        torch.manual_seed(0)
        model = getattr(lab.reference, model_name)().to(dev)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        started = time.perf_counter()
        for xb, yb in DataLoader(Images(), batch_size=batch_size, shuffle=True, drop_last=True):
            xb, yb = xb.to(dev), yb.to(dev)
            loss = torch.nn.functional.cross_entropy(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return (n // batch_size) * batch_size / (time.perf_counter() - started)

    def ours(model_name: str) -> float:
        started = time.perf_counter()
        train_run(lab.reference, x, y, x[:1], model=model_name, lr=1e-3, epochs=1, batch_size=batch_size,
                  device=device)
        return (n // batch_size) * batch_size / (time.perf_counter() - started)

    table = Table(title=f"Training loop throughput, {n} images, batch {batch_size}, Adam, one pass, {device}")
    for col in ("model", "gradelab harness (images/s)", "DataLoader + transforms (images/s)", "ratio"):
        table.add_column(col, justify="right")
    for model_name in ("VGG_A", "VGG_A_BatchNorm"):
        if dev.type == "cuda":  # warm-up: cuDNN autotuning and the first allocations are not throughput
            ours(model_name)
        a, b = ours(model_name), plain(model_name)
        table.add_row(model_name, f"{a:.0f}", f"{b:.0f}", f"{a / b:.2f}×")
    table.caption = ("ours: uint8 → float a batch at a time" +
                     ("; the set on the GPU, channels_last, bf16 autocast" if dev.type == "cuda" else "") +
                     "; plain: PIL images through torchvision.transforms, a DataLoader, float32")
    return table


def whole_hand_in(budget: str, device: str) -> Table:
    """The correct hand-in, every check, training included, through the sandbox."""
    from grader.api import load_lab
    from grader.grading.engine import grade_submission
    from grader.grading.run import Run
    from grader.options import RunOptions

    with Run(load_lab("vgg-batchnorm"), RunOptions(train=True, budget=budget, device=device, reports=False)) as run:
        run.sandbox.warm()  # the fork server's imports are not the hand-in's time
        run.dataset("cifar10", {})  # the synthetic set is written once per machine, not per hand-in
        started = time.perf_counter()
        result = grade_submission(run, CORRECT)
        total = time.perf_counter() - started
    table = Table(title=f"vgg-batchnorm, correct hand-in, every check, {budget} budget, {device}, through the sandbox")
    for col in ("check", "status", "s"):
        table.add_column(col)
    for c in result.checks:
        table.add_row(c.id, c.status.value, f"{c.duration_s:.1f}")
    table.add_row("[bold]whole hand-in[/bold]", f"{result.score:g}/{result.max_score:g}", f"[bold]{total:.1f}[/bold]")
    check = next(c for c in result.checks if c.id == CHECK)
    m = check.details.get("band_metrics") or {}
    if m:
        table.caption = (f"{check.details.get('steps')} steps per run at learning rates "
                         f"{', '.join(f'{lr:g}' for lr in check.details['learning_rates'])}; BatchNorm band / VGG-A band: "
                         f"level {float(m['level_ratio']):.2f} (limit {float(m['max_level_ratio']):.2f}), "
                         f"width {float(m['width_ratio']):.2f} (limit {float(m['max_width_ratio']):.2f}); "
                         f"test accuracy {check.details.get('test_accuracy'):.1%}")
    return table


def calibrate_gpu() -> Table:
    """`gradelab calibrate vgg-batchnorm --budget gpu`, with the band limits it writes."""
    from grader.api import load_lab
    from grader.calibrate import calibrate
    from grader.options import Budget, Device

    lab = load_lab("vgg-batchnorm")
    rows = calibrate(lab, [Budget.gpu], device=Device.cuda, seeds=SEEDS)
    table = Table(title=f"Calibrated: gpu budget, seeds {', '.join(map(str, SEEDS))}, "
                        f"written to {lab.folder / 'calibration.yaml'}")
    for col in ("check", "reference accuracy (worst seed)", "threshold", "level ratio (worst) / limit",
                "width ratio (worst) / limit"):
        table.add_column(col)
    for r in rows:
        x = r.extras

        def cell(key: str, x: dict = x) -> str:
            text = f"{x.get(f'reference_{key}_ratio', float('nan')):.2f} / {x.get(f'max_{key}_ratio', float('nan')):.2f}"
            return text if x.get(f"judge_{key}", True) else f"{text} (not judged)"

        table.add_row(r.check, f"{r.reference_accuracy:.1%}", f"{r.threshold:.0%}", cell("level"), cell("width"))
    return table


def main(gpu: bool = False):
    """Yields each table as soon as it is measured (the cpu budget alone takes minutes)."""
    lab, train_run = _setup()
    if gpu:
        if not torch.cuda.is_available():
            raise SystemExit("--gpu: torch sees no CUDA device on this machine")
        yield calibrate_gpu()
        yield loader_comparison(lab, train_run, "cuda", 8192, 128)
        yield whole_hand_in("gpu", "cuda")
        return
    torch.set_num_threads(2)
    yield loader_comparison(lab, train_run, "cpu", 256, 32)
    yield whole_hand_in("smoke", "cpu")
    yield whole_hand_in("cpu", "cpu")
    if torch.cuda.is_available():
        yield loader_comparison(lab, train_run, "cuda", 8192, 128)
        yield whole_hand_in("gpu", "cuda")
    else:
        yield Table(title="vgg-batchnorm on a GPU: skipped, torch sees no CUDA device (python -m bench.vgg --gpu "
                          "on a machine with one calibrates the gpu budget and prints these tables)")


if __name__ == "__main__":
    import logging

    from rich.console import Console

    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", action="store_true", help="calibrate the gpu budget, then the GPU tables")
    options = parser.parse_args()
    for table in main(gpu=options.gpu):
        Console(width=160).print(table)
