"""What the grader asks of one child: the job (who the child is: its hand-in, limits and
isolation), then one request per probe, all written by the grader and read by the child (the
trusted direction), in the same codec as replies (JSON and ``.npy`` arrays, no pickle).

A child imports the student's module once and answers requests until the grader closes its job
pipe: the probes of one hand-in share a child (and its import) as long as they share its
limits of memory, threads and processes; each request brings its own CPU time."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grader.sandbox import codec
from grader.sandbox.policy import IsolationPlan

LOG_NAME = "output.log"         # the child's stdout and stderr, in the grader's folder beside its working folder
PROGRESS_NAME = ".progress"     # the line a training harness writes after each epoch, same folder
WORK_NAME = "work"              # the child's working folder (a tmpfs of its own where it can be)


@dataclass
class ChildJob:
    """What the grader asks of one child. Travels grader → child, the trusted direction."""

    workdir: str
    log_file: str
    module_file: str
    files: dict[str, bytes] = field(default_factory=dict)   # the hand-in, as the safe reader read it
    memory_mb: int = 2048
    threads: int = 1
    max_processes: int = 64
    file_mb: int = 256
    env: dict[str, str] = field(default_factory=dict)
    isolation: IsolationPlan | None = None
    cgroups: list[str] = field(default_factory=list)
    memory_cgroup: str | None = None  # set: memory is bounded by it, not by an rlimit
    gpu: bool = False  # the child may initialise CUDA: see worker.memory_limit

    def encode(self) -> bytes:
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # no deep copy of arrays
        fields["isolation"] = dataclasses.asdict(self.isolation) if self.isolation else None
        fields["files"] = {name: np.frombuffer(data, dtype=np.uint8) for name, data in self.files.items()}
        return codec.encode(fields)

    @classmethod
    def decode(cls, data: bytes) -> ChildJob:
        fields = codec.decode(data)
        plan = fields.pop("isolation", None)
        files = {name: np.asarray(arr, dtype=np.uint8).tobytes() for name, arr in fields.pop("files", {}).items()}
        return cls(**fields, files=files, isolation=IsolationPlan(**plan) if plan else None)


@dataclass
class Request:
    """One probe for a child that has imported the student's module."""

    probe: str
    payload: dict[str, Any] = field(default_factory=dict)
    cpu_s: float = 60.0

    def encode(self) -> bytes:
        return codec.encode({"probe": self.probe, "payload": self.payload, "cpu_s": self.cpu_s})

    @classmethod
    def decode(cls, data: bytes) -> Request:
        return cls(**codec.decode(data))
