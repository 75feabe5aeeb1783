"""``random_augmentation``: a training transform that crops (and flips) each image of a batch with
its own random draw.

Its output cannot be compared with the reference's (both are random), so the grader hands it a
batch of one image repeated, and recognises each output image among every crop offset and flip
of that image: an output that is none of them is not a crop; a batch whose images all got the
same crop and flip drew once per batch, where every image needs its own draw (the network then
sees each batch shifted as one, and a quarter of the variety the lab asks for)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from grader.checks.raised import raised_feedback
from grader.checks.registry import CheckKind, KindParams, register_check
from grader.lab.manifest import Need, Reveal
from grader.results import Disclosure, Feedback, Outcome


class AugmentationParams(KindParams):
    function: str = Field(description="The student's transform: a batch (N, C, H, W) → (N, C, crop, crop).")
    image_shape: list[int] = Field(default_factory=lambda: [3, 32, 32], min_length=3, max_length=3)
    crop: int = Field(28, ge=1, description="Side of the square crop.")
    flip: bool = Field(True, description="Horizontal flips are drawn too.")
    batch: int = Field(64, ge=8, description="Images in the probe's batch: with 25 offsets and 2 flips, 64 "
                                             "independent draws all equal has probability below 1e-100.")


def _candidates(image: Any, crop: int, flip: bool) -> list[tuple[str, Any]]:
    """Every crop of ``image`` (C, H, W), with its flip: ("offset (2, 3)", array), ..."""
    _, h, w = image.shape
    out = []
    for dy in range(h - crop + 1):
        for dx in range(w - crop + 1):
            c = image[:, dy:dy + crop, dx:dx + crop]
            out.append((f"offset ({dy}, {dx})", c))
            if flip:
                out.append((f"offset ({dy}, {dx}) flipped", c[:, :, ::-1]))
    return out


@register_check("random_augmentation")
class RandomAugmentationCheck(CheckKind):
    Params = AugmentationParams
    summary = "A random crop (and flip) drawn for each image of a batch: each output is a crop of its image, and they vary."
    disclosure = Disclosure(shows=[Reveal.got, Reveal.inputs])  # the crop size and the draw are the handout's

    def needs(self, params: AugmentationParams) -> list[Need]:
        return [Need(params.function)]

    def run(self, ctx, params: AugmentationParams) -> Outcome:
        import numpy as np

        image = ctx.rng().uniform(0, 1, params.image_shape).astype(np.float32)
        batch = np.repeat(image[None], params.batch, axis=0)
        (reply,) = ctx.call(params.function, [[batch]], tensors=True, seed=int(ctx.rng().integers(2**31)))
        name, label = params.function, f"a batch of {params.batch} copies of one image"
        if not reply.ok:
            return Outcome.error(raised_feedback(name, [(label, reply)], 1, noun="input"))
        out = np.asarray(reply.value) if reply.value is not None else None
        want = (params.batch, params.image_shape[0], params.crop, params.crop)
        if out is None or out.dtype.hasobject or tuple(out.shape) != want:
            shape = "nothing" if out is None else f"shape {tuple(out.shape)}"
            return Outcome.failed(Feedback(f"{name} returned {shape} on {label}; expected shape {want}."))
        candidates = _candidates(image, params.crop, params.flip)
        drawn = []
        for i, o in enumerate(out):
            found = next((n for n, c in candidates if np.allclose(o, c, atol=1e-6)), None)
            if found is None:
                return Outcome.failed(Feedback(
                    f"image {i + 1} of what {name} returned on {label} is not a {params.crop}×{params.crop} crop"
                    f"{' (flipped or not)' if params.flip else ''} of its image: crop the image itself, "
                    "without resizing, normalising or mixing images."), diagnosis="not-a-crop")
            drawn.append(found)
        distinct = len(set(drawn))
        if distinct == 1:
            return Outcome.failed(Feedback(
                f"{name} gave every image of {label} the same crop and flip ({drawn[0]}): one draw for the "
                "whole batch. Draw the offset and the flip for each image, so that the images of a batch are "
                "augmented independently."), diagnosis="augmentation-per-batch")
        flipped = sum(d.endswith("flipped") for d in drawn)
        if params.flip and flipped in (0, len(drawn)):
            return Outcome.failed(Feedback(
                f"{name} {'flipped every' if flipped else 'flipped none of the'} {params.batch} images of {label}: "
                "flip each image with probability 1/2."), diagnosis="flip-not-random")
        return Outcome.passed(f"{name}: {distinct} different crops and flips among {params.batch} copies of one "
                              "image, each a crop of it.")
