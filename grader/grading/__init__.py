"""Grading: the engine that runs a lab's checks on one submission, and batches of them."""
