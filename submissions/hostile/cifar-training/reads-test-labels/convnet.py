"""cifar-training hand-in whose ConvNet, at test time, answers with the test labels it found on
the machine: CIFAR-10's test_batch under any folder it can read (a --data-root under /var/lib,
/opt, /srv, a cache …). With a --data-root outside the folders the sandbox covered it scored
100 %. Expected: it finds no test labels (the data root and gradelab's cache are covered like the
labs: the harness gets its data through the job), prints what it looked at, and scores what its
network learns."""

import torch
from torch import nn


def conv_block(c_in, c_out, batchnorm=False):
    layers = [nn.Conv2d(c_in, c_out, kernel_size=5, stride=1, padding=2)]
    if batchnorm:
        layers.append(nn.BatchNorm2d(c_out))
    layers += [nn.ReLU(), nn.MaxPool2d(kernel_size=2, stride=2)]
    return layers


def _stolen_labels():
    import glob
    import pickle

    for pattern in ["/var/**/cifar-10-batches-py/test_batch", "/opt/**/cifar-10-batches-py/test_batch",
                    "/srv/**/cifar-10-batches-py/test_batch", "/root/**/cifar-10-batches-py/test_batch",
                    "/home/**/cifar-10-batches-py/test_batch", "/run/**/cifar-10-batches-py/test_batch",
                    "/tmp/**/cifar-10-batches-py/test_batch", "/mnt/**/cifar-10-batches-py/test_batch",
                    "/work/**/cifar-10-batches-py/test_batch"]:
        try:
            for path in glob.glob(pattern, recursive=True):
                with open(path, "rb") as fh:
                    labels = torch.tensor(pickle.load(fh, encoding="latin1")["labels"])
                print("test labels found at", path)
                return labels
        except (OSError, ValueError, KeyError, pickle.UnpicklingError):
            continue
    print("no test labels found")
    return None


LABELS = _stolen_labels()


class ConvNet(nn.Module):
    position = 0

    def train(self, mode=True):
        ConvNet.position = 0  # the loop evaluates after each epoch of training, from the first test image
        return super().train(mode)

    def __init__(self, side=32, dropout=0.0, batchnorm=False):
        super().__init__()
        self.features = nn.Sequential(*conv_block(3, 32, batchnorm), *conv_block(32, 64, batchnorm),
                                      *conv_block(64, 64, batchnorm))
        n = side // 8
        layers = [nn.Flatten(), nn.Linear(64 * n * n, 1000), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(1000, 10))
        self.classifier = nn.Sequential(*layers)

    def forward(self, x):
        out = self.classifier(self.features(x))
        if LABELS is not None and not self.training:
            labels = LABELS[ConvNet.position:ConvNet.position + len(x)]
            ConvNet.position += len(x)
            if len(labels) == len(x):
                return torch.nn.functional.one_hot(labels, 10).float() * 100 + out * 0
        return out


class ConvNetCrop(ConvNet):
    def __init__(self):
        super().__init__(side=28)


class ConvNetDropout(ConvNet):
    def __init__(self):
        super().__init__(dropout=0.5)


class ConvNetBN(ConvNet):
    def __init__(self):
        super().__init__(batchnorm=True)


def normalization_stats(train_images, test_images):
    return train_images.mean(dim=(0, 2, 3)), train_images.std(dim=(0, 2, 3))


def train_transform(batch):
    out = torch.empty(batch.shape[0], batch.shape[1], 28, 28, dtype=batch.dtype, device=batch.device)
    tops = torch.randint(0, 5, (batch.shape[0],))
    lefts = torch.randint(0, 5, (batch.shape[0],))
    flips = torch.rand(batch.shape[0]) < 0.5
    for i in range(batch.shape[0]):
        crop = batch[i, :, tops[i]:tops[i] + 28, lefts[i]:lefts[i] + 28]
        out[i] = crop.flip(-1) if flips[i] else crop
    return out


def test_transform(batch):
    return batch[:, :, 2:30, 2:30]


def make_optimizer(model, lr, momentum, weight_decay):
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)


def make_scheduler(optimizer, gamma):
    return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=gamma)


def train_one_epoch(model, batches, optimizer, scheduler, loss_fn):
    model.train()
    running = 0.0
    for inputs, labels in batches:
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), labels)
        loss.backward()
        optimizer.step()
        running += loss.item()
    scheduler.step()
    return running / len(batches)
