"""A fork bomb at import. Expected: the process cap stops it (forks fail), the wall-time limit
ends the check, and every forked process is reaped: none survives the check."""
import os

while True:
    try:
        os.fork()
    except OSError:
        pass
