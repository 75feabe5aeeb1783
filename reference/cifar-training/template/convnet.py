"""cifar-training: the ConvNet of cifar-convnet, trained, and its improvements.

Check yourself (fast, no training):     gradelab check . --lab cifar-training
With training (minutes on a CPU):       gradelab check . --lab cifar-training --train
"""

import torch
from torch import nn


class ConvNet(nn.Module):
    """conv1 32 5×5 | pool | conv2 64 5×5 | pool | conv3 64 5×5 | pool | fc4 1000 | fc5 10, ReLU after each conv and fc4."""


class ConvNetCrop(nn.Module):
    """The same network for 28×28 crops."""


class ConvNetDropout(nn.Module):
    """ConvNet with dropout (p = 0.5) between fc4 and fc5."""


class ConvNetBN(nn.Module):
    """ConvNet with a BatchNorm2d after each conv."""


def normalization_stats(train_images, test_images):
    """Per-channel (mean, std), each of 3 values, used to normalise both sets. Images: (N, 3, H, W) in [0, 1]."""
    raise NotImplementedError


def train_transform(batch):
    """(N, 3, 32, 32) → (N, 3, 28, 28): a random 28×28 crop and a random horizontal flip per image."""
    raise NotImplementedError


def test_transform(batch):
    """(N, 3, 32, 32) → (N, 3, 28, 28): the centre crop."""
    raise NotImplementedError


# The grader trains your networks with these three (`--train`): its loop hands train_one_epoch the
# batches (already normalised and augmented) and the loss function, and evaluates between epochs.

def make_optimizer(model, lr, momentum, weight_decay):
    """SGD over all the model's parameters, with this learning rate, momentum and weight decay."""
    raise NotImplementedError


def make_scheduler(optimizer, gamma):
    """Exponential learning-rate decay: each scheduler.step() (once an epoch) multiplies the rate by gamma."""
    raise NotImplementedError


def train_one_epoch(model, batches, optimizer, scheduler, loss_fn):
    """One pass over `batches` ((x, y) pairs) in train mode: per batch, one optimizer step on
    loss_fn(model(x), y); then step the scheduler once. Return the epoch's mean loss (for you: the
    grader records the loss itself)."""
    raise NotImplementedError
