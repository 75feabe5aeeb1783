"""What the labs' training harnesses share to make a step cheap, inside the sandbox with the
student's network: bfloat16 where the device computes it natively, channels_last where the
student's forward pass accepts it.

Measured on this project's 2-core machine (AMD EPYC with AVX512-BF16, torch 2.14, one step of
batch 32): cifar-training's ConvNet 37 ms in float32, 16 ms in channels_last under bfloat16
autocast; VGG-A (batch 16) 135 ms against 103 ms under bfloat16, where channels_last is slower
on the CPU (149 ms). ``python -m bench.training`` measures the whole loop.

Both choices are the grader's, not the student's, and the calibration is measured under the same
ones (the reference trains through the same harness): a threshold set on a machine that computes
bfloat16 natively is set on the precision it grades with. A CPU without native bfloat16 (where
oneDNN emulates it, slower than float32) trains in float32.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def bfloat16_native(dev: Any) -> bool:
    """Whether ``dev`` (a ``torch.device``) computes bfloat16 natively: a CUDA GPU, or a CPU whose
    oneDNN has bfloat16 kernels (AVX512-BF16 or AMX)."""
    import torch

    if dev.type == "cuda":
        return True
    try:
        return bool(dev.type == "cpu" and torch.backends.mkldnn.is_available()
                    and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch without the query: float32, as before
        return False


def channels_last_if_accepted(net: Any, sample: Callable[[], Any], dev: Any) -> bool:
    """Put ``net`` in channels_last if its forward pass accepts it, and say whether it did.

    ``x.view(n, -1)`` on a channels_last map raises (``reshape`` and ``flatten`` do not), and many
    correct students write ``view``: one forward pass on ``sample()``, in eval mode, without
    gradients and with the random state put back, decides. A network that raises trains in the
    default layout, where its own faults (if any) surface in training as they always did."""
    import torch

    net.to(memory_format=torch.channels_last)
    was_training = net.training
    try:
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []), torch.no_grad():
            net.eval()
            net(sample().contiguous(memory_format=torch.channels_last))
        return True
    except Exception:
        net.to(memory_format=torch.contiguous_format)
        return False
    finally:
        net.train(was_training)


def autocast_forward(net: Any, dev: Any) -> None:
    """Run ``net``'s forward pass under bfloat16 autocast wherever it is called from (the student's
    own training loop included): entered by a forward pre-hook, left by a forward hook."""
    import torch

    active: list[Any] = []

    def enter(module: Any, args: Any) -> None:
        active.append(torch.autocast(dev.type, dtype=torch.bfloat16))
        active[-1].__enter__()  # a pre-hook returning None keeps the forward's inputs as they are

    def leave(module: Any, args: Any, out: Any) -> None:
        active.pop().__exit__(None, None, None)  # returning None keeps the forward's output

    net.register_forward_pre_hook(enter)
    net.register_forward_hook(leave)
