"""cifar-training hand-in: the ConvNet, its variants, normalisation statistics and augmentation."""

import torch
from torch import nn


def conv_block(c_in, c_out, batchnorm=False):
    layers = [nn.Conv2d(c_in, c_out, kernel_size=5, stride=1, padding=2)]
    if batchnorm:
        layers.append(nn.BatchNorm2d(c_out))
    layers += [nn.ReLU(), nn.MaxPool2d(kernel_size=2, stride=2)]
    return layers


class ConvNet(nn.Module):
    def __init__(self, side=32, dropout=0.0, batchnorm=False):
        super().__init__()
        # One list of blocks, easy to loop over in forward.
        self.blocks = [nn.Sequential(*conv_block(3, 32, batchnorm)), nn.Sequential(*conv_block(32, 64, batchnorm)),
                       nn.Sequential(*conv_block(64, 64, batchnorm))]
        n = side // 8
        layers = [nn.Flatten(), nn.Linear(64 * n * n, 1000), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(1000, 10))
        self.classifier = nn.Sequential(*layers)

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.classifier(x)


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
