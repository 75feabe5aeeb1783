"""Running untrusted student code: a forked child with limits, speaking a strict codec.

``runner`` (grader side: ``Sandbox``, one per run) starts children from ``forkserver``, a
process of gradelab's own that preloaded torch; ``worker`` (child side) reads its ``job``,
contains itself as ``policy`` says (namespaces, covered folders, a tmpfs folder, the ``cgroup``s
the grader made, a uid leased from ``uids``), imports the student's module and runs one probe
from ``probes`` (``watch`` records the operators and names it calls); ``codec`` is the only way
data comes back (JSON plus ``.npy`` arrays, decoded without pickle), ``untrusted`` makes its text
harmless and ``replies`` validates it.
"""
