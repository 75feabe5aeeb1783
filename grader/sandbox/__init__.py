"""Running untrusted student code: a forked child with limits, speaking a strict codec.

``runner`` (grader side) starts children from a forkserver that preloaded torch; ``worker``
(child side) imports the student's module and runs one probe from ``probes``; ``codec`` is the
only way data comes back: JSON plus ``.npy`` arrays, decoded without pickle.
"""
