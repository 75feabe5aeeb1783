"""VGG-A with and without BatchNorm, and the loss landscape (a correct hand-in)."""

import torch
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters


def init_weights_(model):
    """Xavier-normal weights, zero biases: the course's initialisation."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class VGG_A(nn.Module):
    """VGG-A for 32×32 RGB images: eight 3×3 convs (padding 1, each followed by a ReLU) in five
    stages, 64 | M | 128 | M | 256, 256 | M | 512, 512 | M | 512, 512 | M (M: 2×2 max-pool), so the
    map is 1×1×512 at the end; then Linear(512, 512), ReLU, Linear(512, 512), ReLU, Linear(512, 10)."""

    def __init__(self, inp_ch=3, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            # stage 1
            nn.Conv2d(inp_ch, 64, kernel_size=3, padding=1), nn.ReLU(True),
            nn.MaxPool2d(kernel_size=2, stride=2),
            # stage 2
            nn.Conv2d(64, 128, kernel_size=3, padding=1), nn.ReLU(True),
            nn.MaxPool2d(kernel_size=2, stride=2),
            # stage 3
            nn.Conv2d(128, 256, kernel_size=3, padding=1), nn.ReLU(True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(True),
            nn.MaxPool2d(kernel_size=2, stride=2),
            # stage 4
            nn.Conv2d(256, 512, kernel_size=3, padding=1), nn.ReLU(True),
            nn.Conv2d(512, 512, kernel_size=3, padding=1), nn.ReLU(True),
            nn.MaxPool2d(kernel_size=2, stride=2),
            # stage 5
            nn.Conv2d(512, 512, kernel_size=3, padding=1), nn.ReLU(True),
            nn.Conv2d(512, 512, kernel_size=3, padding=1), nn.ReLU(True),
            nn.MaxPool2d(kernel_size=2, stride=2))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 1 * 1, 512), nn.ReLU(True),
            nn.Linear(512, 512), nn.ReLU(True),
            nn.Linear(512, num_classes))
        init_weights_(self)

    def forward(self, x):
        x = self.features(x)
        return self.classifier(x.view(-1, 512 * 1 * 1))


class VGG_A_BatchNorm(nn.Module):
    """VGG_A with a BatchNorm2d after each conv, before its ReLU."""

    def __init__(self, inp_ch=3, num_classes=10):
        super().__init__()
        cfg = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, "M"]
        layers, channels = [], inp_ch
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, v, kernel_size=3, padding=1), nn.BatchNorm2d(v), nn.ReLU(True)]
                channels = v
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Linear(512 * 1 * 1, 512), nn.ReLU(True),
            nn.Linear(512, 512), nn.ReLU(True),
            nn.Linear(512, num_classes))
        init_weights_(self)

    def forward(self, x):
        x = self.features(x)
        return self.classifier(x.view(-1, 512 * 1 * 1))


def get_accuracy(model, loader):
    model.eval()
    correct, total = 0, 0
    with torch.no_grad():
        for x, y in loader:
            pred = model(x).argmax(dim=1)
            correct += (pred == y).sum().item()
            total += y.size(0)
    return correct / total


def train(model, optimizer, criterion, train_loader, epochs):
    losses, grads = [], []
    for epoch in range(epochs):
        model.train()
        for x, y in train_loader:
            optimizer.zero_grad()
            loss = criterion(model(x), y)
            loss.backward()
            losses.append(loss.item())
            grads.append(model.classifier[-1].weight.grad.clone())
            optimizer.step()
    return losses, grads


def loss_band(runs):
    steps = max(len(run) for run in runs)
    min_curve, max_curve = [], []
    for t in range(steps):
        at_t = [run[t] for run in runs if len(run) > t]
        min_curve.append(min(at_t))
        max_curve.append(max(at_t))
    return min_curve, max_curve


def _gradient(model, criterion, x, y):
    params = [p for p in model.parameters() if p.requires_grad]
    loss = criterion(model(x), y)
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)])


def _gradients_along(model, criterion, x, y, distances):
    params = [p for p in model.parameters() if p.requires_grad]
    saved = parameters_to_vector(params).detach().clone()
    g = _gradient(model, criterion, x, y)
    moved = []
    for d in distances:
        with torch.no_grad():
            vector_to_parameters(saved - d * g, params)
        moved.append(_gradient(model, criterion, x, y))
    with torch.no_grad():
        vector_to_parameters(saved, params)
    return g, moved


def gradient_predictiveness(model, criterion, x, y, distances):
    g, moved = _gradients_along(model, criterion, x, y, distances)
    return [torch.norm(h - g).item() for h in moved]


def beta_smoothness(model, criterion, x, y, distances):
    g, moved = _gradients_along(model, criterion, x, y, distances)
    return max((torch.norm(h - g) / (d * torch.norm(g))).item() for h, d in zip(moved, distances))
