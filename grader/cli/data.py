"""``gradelab data``: write the data sets gradelab ships, in the real on-disk formats."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from grader.cli.common import console, user_errors

data_app = typer.Typer(help="Write data sets in their real on-disk formats (read by torchvision's own loaders).",
                       no_args_is_help=True)


@data_app.command("synth-cifar10")
def synth_cifar10(
    root: Annotated[Path, typer.Argument(help="Folder to write ROOT/cifar-10-batches-py into.")],
    train: Annotated[int, typer.Option("--train", help="Training images (the bundled sets: 10 000, then 256 "
                                                       "held out for early stopping).")] = 10_256,
    test: Annotated[int, typer.Option("--test", help="Test images.")] = 2_000,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    style: Annotated[str, typer.Option("--style", help="gratings (vgg-batchnorm's bundled set) or colour-axes "
                                                       "(cifar-training's).")] = "gratings",
) -> None:
    """A learnable 10-class set in CIFAR-10's own files (pickled batches and meta)."""
    from grader.data.synth_cifar import write_synth_cifar10

    with user_errors():
        try:
            folder = write_synth_cifar10(root, n_train=train, n_test=test, seed=seed, style=style)
        except ValueError as e:
            raise typer.BadParameter(str(e), param_hint="--style") from None
    console.print(f"Wrote {train} training and {test} test images to {folder}/ "
                  f"(read it with torchvision.datasets.CIFAR10({str(root)!r}, download=False); "
                  "pass --data-root to grade on it).")


@data_app.command("digits")
def digits(root: Annotated[Path, typer.Argument(help="Folder to write ROOT/MNIST/raw into.")]) -> None:
    """Real handwritten digits (UCI, via scikit-learn) in MNIST's IDX files."""
    from grader.data.digits import write_digits

    with user_errors():
        folder = write_digits(root)
    console.print(f"Wrote 1500 training and 297 test digits to {folder}/ "
                  f"(read them with torchvision.datasets.MNIST({str(root)!r}, download=False)).")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
