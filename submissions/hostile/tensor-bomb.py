"""Asks torch for a 4 TB tensor. Expected: "ran out of memory" on the checks."""
import torch

x = torch.ones(10 ** 12)
