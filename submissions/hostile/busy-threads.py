"""Starts busy threads at import and spins. Expected: timeout (CPU or wall-time limit), the
whole process killed."""
import threading


def spin():
    while True:
        pass


for _ in range(4):
    threading.Thread(target=spin, daemon=True).start()
spin()
