"""Running untrusted student code: a forked child with limits, speaking a strict codec.

``runner`` (grader side: ``Sandbox``, one per run) starts children from ``forkserver``, a
process of gradelab's own that preloaded torch; ``worker`` (child side) reads its ``job``,
imports the student's module and runs one probe from ``probes``; ``codec`` is the only way data
comes back (JSON plus ``.npy`` arrays, decoded without pickle) and ``replies`` validates it.
"""
