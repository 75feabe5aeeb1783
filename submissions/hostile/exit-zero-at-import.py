"""Calls sys.exit(0) at import, hoping a clean exit reads as success. Expected: an error
on every check that needs the module, saying sys.exit() ended it."""
import sys

sys.exit(0)
