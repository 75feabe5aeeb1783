"""Sleeps at import time, far past any wall-time limit. Expected: every check that needs the
module reports a timeout at the wall-time limit."""
import time

time.sleep(10 ** 6)
