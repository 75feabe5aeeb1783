"""Raises KeyboardInterrupt at import, as if the grader had been interrupted. Expected: a
message on each check that needs the module; the batch goes on (the grader is not stopped)."""
raise KeyboardInterrupt
