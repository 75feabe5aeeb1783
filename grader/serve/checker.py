"""Where an upload is unpacked and checked: a process of its own, not the web process.

An archive may be a zip bomb or a tar of 10 000 entries: unpacking it (up to the intake caps) is
CPU and memory that a hostile student controls. Done in the web process, it stalls every page
and could take its memory; here it runs in one long-lived child process (started on the first
upload, ``forkserver`` so it inherits nothing of the web process's state), under an address-space
cap, one upload at a time. A child that dies (the cap reached) refuses that upload and is
replaced; the server goes on.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import resource
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from grader.lab.manifest import IntakeLimits, InterfaceSpec
from grader.serve.uploads import Upload, UploadRefused, accept

log = logging.getLogger(__name__)
MEMORY_CAP = 2 * 1024 ** 3  # bytes of address space for the checking process


def _cap_memory() -> None:
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = MEMORY_CAP if hard == resource.RLIM_INFINITY else min(MEMORY_CAP, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    except (ValueError, OSError):  # pragma: no cover  (a platform without the limit)
        pass


class UploadChecker:
    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("forkserver"),
                                             initializer=_cap_memory)
        return self._pool

    def warm(self) -> None:
        """Start the checking process now (not on the first upload, which would wait for it)."""
        self._executor().submit(int)

    async def check(self, sent: list[tuple[str, bytes]], interface: InterfaceSpec, intake: IntakeLimits) -> Upload:
        """``accept`` run in the checking process: the upload to store, or ``UploadRefused``."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor(), accept, sent, interface, intake)
        except BrokenProcessPool:
            log.warning("the upload-checking process died (memory cap?): upload refused, process replaced")
            self.close()
            raise UploadRefused("this upload could not be unpacked within the server's memory limit", status=422) \
                from None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
