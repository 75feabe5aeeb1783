"""Data sets written in their real on-disk formats, so the real torchvision loaders read them.

No machine running gradelab is assumed to reach the internet. Instructors point ``--data-root``
at the real data; tests and the demo use what this package writes.
"""
