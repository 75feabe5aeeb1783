"""Learnable 10-class image sets written exactly as CIFAR-10 ships (``cifar-10-batches-py/``:
``data_batch_1`` … ``data_batch_5``, ``test_batch``, ``batches.meta``, pickled dicts with a
``data`` array of N × 3072 uint8, channel-major, and ``labels``), so torchvision's own CIFAR10
loader reads them. Two styles (``STYLES``), each versioned: a calibration records the style and
version it was measured on, and a changed generator makes the old thresholds stale, not silently
reused.

``gratings`` (vgg-batchnorm): each class is a grating (an orientation and a frequency) at a random
phase, in a random colour, with noise. The random phase makes every class's mean image flat, so
no linear model learns it. A network without ReLU still does: a 2×2 max-pool over a linear
filter's responses at shifted phases is their energy.

``colour-axes`` (cifar-training, whose training checks must tell a network without its ReLUs from
the lab's): each class is an axis in the chroma plane (ten axes 18° apart), the image's colour
lying on it at a random sign and strength, over a class-free luminance texture at random
positions, fading to grey towards the border. Every class's mean image is grey, so a linear model
is at chance; a ReLU computes |w·colour| at once. A network whose only non-linearity is max-pooling
gets one only where the responses inside a pool window differ: on flat colour that is the zero
padding at the border (the max of a partial and a full sum), which the grey frame and its ramp
take away; what is left (the ramp's slope) it learns from much more slowly. Measured by
``gradelab calibrate cifar-training --budget cpu --against ...`` (3 epochs of 2000 images, SGD lr
0.05, bfloat16): the reference 59.2 % on the baseline recipe, the network without ReLUs 22.4 %; with
momentum or BatchNorm max-pooling alone learns fast enough to pass (docs/labs.md has the table).
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np

from grader.atomic import write_atomic

BASE = "cifar-10-batches-py"
MARKER = "GRADELAB_SYNTHETIC"
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


ORIENTATIONS = np.deg2rad([0, 25, 50, 70, 90])
FREQUENCIES = (0.12, 0.24)  # cycles per pixel


def images(n: int, seed: int, style: str = "gratings") -> tuple[np.ndarray, np.ndarray]:
    """``n`` images (N, 3, 32, 32) uint8 and their labels in ``style`` (one of ``STYLES``)."""
    if style not in STYLES:
        raise ValueError(f"unknown synthetic CIFAR-10 style {style!r}: one of {', '.join(STYLES)}")
    return _GENERATORS[style](n, seed)


def gratings(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images (N, 3, 32, 32) uint8 and their labels, balanced over the classes.

    Class k is a grating of one of 5 orientations and 2 frequencies, at a random phase (so its
    mean image is flat), jittered in angle and frequency, in a random colour, with noise. An
    oblique grating comes with its mirror image (a plaid of θ and 180° − θ), so a horizontal
    flip, the lab's augmentation, keeps every image in its class."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 10)
    theta = ORIENTATIONS[labels % 5] + rng.normal(0, 0.06, n)
    freq = np.asarray(FREQUENCIES)[labels // 5] * rng.uniform(0.9, 1.1, n)
    phase = rng.uniform(0, 2 * np.pi, n)
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float32)
    def grating(angle: np.ndarray, shift: np.ndarray) -> np.ndarray:
        proj = np.cos(angle)[:, None, None] * xx + np.sin(angle)[:, None, None] * yy
        return np.sin(2 * np.pi * freq[:, None, None] * proj + shift[:, None, None])

    oblique = (labels % 5 != 0) & (labels % 5 != 4)
    mirror = grating(np.pi - theta, rng.uniform(0, 2 * np.pi, n))
    wave = np.where(oblique[:, None, None], (grating(theta, phase) + mirror) / np.sqrt(2),
                    grating(theta, phase)).astype(np.float32)
    base = rng.uniform(0.4, 0.6, (n, 3, 1, 1)).astype(np.float32)
    colour = rng.uniform(0.2, 0.4, (n, 3, 1, 1)).astype(np.float32) * rng.choice([-1, 1], (n, 3, 1, 1))
    x = base + colour * wave[:, None] + rng.normal(0, 0.06, (n, 3, 32, 32)).astype(np.float32)
    return np.clip(np.round(x * 255), 0, 255).astype(np.uint8), labels.astype(np.int64)


CHROMA = np.array([[1.0, -1.0, 0.0], [1.0, 1.0, -2.0]]) / np.sqrt([[2.0], [6.0]])


def _smooth_field(rng: np.random.Generator, n: int, sigma: float, size: int = 32) -> np.ndarray:
    """``n`` zero-mean, unit-variance Gaussian random fields, smooth over about ``sigma`` pixels."""
    f = np.fft.fftfreq(size)
    kernel = np.exp(-2 * (np.pi * sigma) ** 2 * (f[:, None] ** 2 + f[None, :] ** 2))
    field = np.real(np.fft.ifft2(np.fft.fft2(rng.normal(size=(n, size, size))) * kernel))
    return (field / (field.std(axis=(1, 2), keepdims=True) + 1e-8)).astype(np.float32)


def colour_axes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Class k: the image's colour on the chroma axis at 18°·k (± 2°), at a random sign and a
    strength of 0.2–0.4, fading to grey over the 8 pixels next to the border (2 grey, then a
    ramp); a luminance texture (smooth over ~5 pixels, the same for every class) and pixel noise
    on top. A horizontal flip or a crop keeps every image in its class."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 10)
    angle = np.deg2rad(18 * labels + rng.normal(0, 2, n))
    axis = np.cos(angle)[:, None] * CHROMA[0] + np.sin(angle)[:, None] * CHROMA[1]  # (n, 3)
    strength = rng.choice([-1.0, 1.0], n) * rng.uniform(0.2, 0.4, n)
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float32)
    to_border = np.minimum(np.minimum(xx, 31 - xx), np.minimum(yy, 31 - yy))
    frame = np.clip((to_border - 2) / 6, 0, 1)
    texture = 0.1 * _smooth_field(rng, n, 5.0)
    x = (0.5 + (strength[:, None] * axis)[:, :, None, None] * frame + texture[:, None]
         + rng.normal(0, 0.03, (n, 3, 32, 32)))
    return np.clip(np.round(x * 255), 0, 255).astype(np.uint8), labels.astype(np.int64)


_GENERATORS = {"gratings": gratings, "colour-axes": colour_axes}
# A style's version changes whenever its images change: calibrations record it (``version_of``).
STYLES = {"gratings": 1, "colour-axes": 1}


def version_of(style: str) -> str:
    """What a calibration records as the bundled data it was measured on, e.g. ``colour-axes/1``."""
    return f"{style}/{STYLES[style]}"


# The bundled training set: 10 000 images (what every budget trains on, the gpu budget all of
# them), then ``HELD_OUT`` more, drawn from their own seed and appended, so that the first 10 000
# stay exactly the images every calibration was measured on: the held-out examples early stopping
# scores on the gpu budget (``early_stop.held_out`` in a lab).
BUNDLED_TRAIN = 10_000
HELD_OUT = 256


def training_images(n: int, seed: int, style: str) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` training images of the set ``seed`` makes: up to ``BUNDLED_TRAIN`` from
    ``seed``, any beyond from ``seed + 2`` (the test set uses ``seed + 1``)."""
    x, y = images(min(n, BUNDLED_TRAIN), seed, style)
    if n <= BUNDLED_TRAIN:
        return x, y
    more_x, more_y = images(n - BUNDLED_TRAIN, seed + 2, style)
    return np.concatenate([x, more_x]), np.concatenate([y, more_y])


def write_synth_cifar10(root: Path, n_train: int = BUNDLED_TRAIN + HELD_OUT, n_test: int = 2_000, seed: int = 0,
                        style: str = "gratings") -> Path:
    """Write the set under ``root/cifar-10-batches-py`` (five training batches, one test batch)."""
    folder = Path(root) / BASE
    folder.mkdir(parents=True, exist_ok=True)
    train_x, train_y = training_images(n_train, seed, style)
    test_x, test_y = images(n_test, seed + 1, style)
    splits = np.array_split(np.arange(n_train), 5)
    for k, idx in enumerate(splits, start=1):
        _dump(folder / f"data_batch_{k}", train_x[idx], train_y[idx], f"training batch {k} of 5")
    _dump(folder / "test_batch", test_x, test_y, "testing batch 1 of 1")
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": CLASSES, "num_cases_per_batch": len(splits[0]), "num_vis": 3072}, fh)
    (folder / MARKER).write_text(f"generated by gradelab: style={version_of(style)} n_train={n_train} "
                                 f"n_test={n_test} seed={seed}\n")
    return folder


def _dump(path: Path, x: np.ndarray, y: np.ndarray, label: str) -> None:
    # Python 2 pickled CIFAR-10 with str keys; torchvision unpickles with encoding="latin1" and
    # looks them up as str, so str keys it is.
    batch = {"batch_label": label, "labels": [int(v) for v in y], "data": x.reshape(len(x), 3072),
             "filenames": [f"synth_{i:05d}.png" for i in range(len(x))]}
    write_atomic(path, pickle.dumps(batch, protocol=2))


def load_cifar10(root: Path, train: bool):
    """torchvision's CIFAR10 on ``root``. For a folder gradelab generated, the same class with the
    official archive's md5 sums left out (they cannot match generated files); real CIFAR-10 is
    checked as torchvision always checks it."""
    from torchvision.datasets import CIFAR10

    if (Path(root) / BASE / MARKER).exists():
        class GeneratedCIFAR10(CIFAR10):
            train_list = [[name, None] for name, _ in CIFAR10.train_list]
            test_list = [[name, None] for name, _ in CIFAR10.test_list]
            meta = {**CIFAR10.meta, "md5": None}

        return GeneratedCIFAR10(str(root), train=train, download=False)
    return CIFAR10(str(root), train=train, download=False)


def cifar10_arrays(data_root: Path | str | None = None, n_train: int | None = None,
                   n_test: int | None = None, style: str = "gratings") -> dict[str, Any]:
    """CIFAR-10 as the labs' harnesses take it, through torchvision's loader: the real set when
    ``data_root`` holds it, else the synthetic set of ``style`` (written on first use).
    ``train_x``/``test_x`` uint8 (N, 3, 32, 32), ``train_y``/``test_y`` int64, the first
    ``n_train``/``n_test`` of each."""
    root = Path(data_root) if data_root is not None else ensure_synth_cifar10(style=style)
    out: dict[str, Any] = {"classes": 10}
    for split, train, limit in (("train", True, n_train), ("test", False, n_test)):
        ds = load_cifar10(root, train)
        x = np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2))
        y = np.asarray(ds.targets, dtype=np.int64)
        if limit:
            x, y = x[:limit], y[:limit]
        out[f"{split}_x"], out[f"{split}_y"] = x, y
    return out


def ensure_synth_cifar10(root: Path | None = None, style: str = "gratings") -> Path:
    """``root`` (default: the per-user cache, a folder per style and version) holding the synthetic
    set, written on first use."""
    from grader.data.digits import default_root

    if root is None:
        name = "synth-cifar10" if style == "gratings" else f"synth-cifar10-{style}-v{STYLES[style]}"
        root = default_root().parent / name
    root = Path(root)
    if _written_train(root) < BUNDLED_TRAIN + HELD_OUT:  # none yet, or one written before the held-out images
        write_synth_cifar10(root, style=style)
    return root


def _written_train(root: Path) -> int:
    """How many training images the generated folder at ``root`` holds (0: none there)."""
    try:
        found = re.search(r"\bn_train=(\d+)", (root / BASE / MARKER).read_text())
    except OSError:
        return 0
    return int(found.group(1)) if found else 0
