"""Real handwritten digits in MNIST's own layout, from a copy shipped with gradelab.

The source is the UCI "Optical Recognition of Handwritten Digits" test set (1 797 digits by 13
writers, 8×8, values 0–16; E. Alpaydin and C. Kaynak, CC BY 4.0), as bundled with scikit-learn
(``sklearn/datasets/data/digits.csv.gz``, BSD-3). Each digit is resized to 20×20 and centred in a
28×28 frame, as MNIST's are, and written as ``MNIST/raw/*-idx?-ubyte`` so that
``torchvision.datasets.MNIST(root, download=False)`` reads it unchanged.
"""

from __future__ import annotations

import gzip
import os
import tempfile
from pathlib import Path

import numpy as np

from grader.data.idx import write_idx

SOURCE = Path(__file__).with_name("digits.csv.gz")
N_TEST = 297  # the remaining 1 500 are the training set
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def default_root() -> Path:
    """Where the digits are written when no ``--data-root`` is given (a per-user cache)."""
    return cache_root() / "digits"


def cache_root() -> Path:
    """gradelab's per-user cache of generated data sets (the sandbox hides it: test labels)."""
    base = os.environ.get("XDG_CACHE_HOME") or (Path.home() / ".cache")
    try:
        Path(base).mkdir(parents=True, exist_ok=True)
        probe = Path(base)
        if not os.access(probe, os.W_OK):
            raise OSError
    except OSError:
        base = tempfile.gettempdir()
    return Path(base) / "gradelab"


def _images() -> tuple[np.ndarray, np.ndarray]:
    import torch
    import torch.nn.functional as F

    with gzip.open(SOURCE, "rt") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.float32)
    pixels, labels = table[:, :64].reshape(-1, 1, 8, 8) / 16.0, table[:, 64].astype(np.uint8)
    big = F.interpolate(torch.from_numpy(pixels), size=(20, 20), mode="bilinear", align_corners=False)
    framed = F.pad(big, (4, 4, 4, 4)).squeeze(1).clamp(0, 1).numpy()
    return np.round(framed * 255).astype(np.uint8), labels


def write_digits(root: Path) -> Path:
    """Write the four MNIST files under ``root/MNIST/raw`` (a fixed, shuffled train/test split)."""
    raw = Path(root) / "MNIST" / "raw"
    images, labels = _images()
    order = np.random.default_rng(0).permutation(len(labels))
    test, train = order[:N_TEST], order[N_TEST:]
    write_idx(raw / FILES[0], images[train])
    write_idx(raw / FILES[1], labels[train])
    write_idx(raw / FILES[2], images[test])
    write_idx(raw / FILES[3], labels[test])
    return raw


def ensure_digits(root: Path | None = None) -> Path:
    """``root`` (default: the cache) holding the digits, written on first use."""
    root = Path(root) if root is not None else default_root()
    raw = root / "MNIST" / "raw"
    if not all((raw / f).exists() for f in FILES):
        write_digits(root)
    return root
