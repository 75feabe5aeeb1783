"""Allocates Python lists until memory runs out. Expected: "ran out of memory" on the checks,
not a bare "Killed"."""
hoard = []
while True:
    hoard.append([0] * 10 ** 7)
