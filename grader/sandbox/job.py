"""What the grader asks of one child: the job, written by the grader and read by the child (the
trusted direction), in the same codec as replies (JSON and ``.npy`` arrays, no pickle)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from grader.sandbox import codec
from grader.sandbox.isolation import IsolationPlan

LOG_NAME = "output.log"   # the child's stdout and stderr, in its working directory


@dataclass
class ChildJob:
    """What the grader asks of one child. Travels grader → child, the trusted direction."""

    workdir: str
    module_file: str
    probe: str
    payload: dict[str, Any] = field(default_factory=dict)
    memory_mb: int = 2048
    cpu_s: float = 60.0
    threads: int = 1
    max_processes: int = 64
    file_mb: int = 256
    env: dict[str, str] = field(default_factory=dict)
    isolation: IsolationPlan | None = None
    cgroup: str | None = None
    gpu: bool = False  # the child may initialise CUDA: see _apply_limits

    def encode(self) -> bytes:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # no deep copy of arrays
        fields["isolation"] = dataclasses.asdict(self.isolation) if self.isolation else None
        return codec.encode(fields)

    @classmethod
    def decode(cls, data: bytes) -> "ChildJob":
        fields = codec.decode(data)
        plan = fields.pop("isolation", None)
        return cls(**fields, isolation=IsolationPlan(**plan) if plan else None)


