"""A narrow ResNet sized for 2 CPU cores: a few million parameters, a few hundred
MFLOPs per image, fully convolutional (any input size works; global average pool)."""

import torch
from torch import nn


def conv_bn(cin, cout, stride=1, k=3):
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, k // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class Block(nn.Module):
    """ResNet basic block (two 3x3 convs) with a projection shortcut when shapes change."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.a = conv_bn(cin, cout, stride)
        self.b = nn.Sequential(nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        nn.init.zeros_(self.b[1].weight)  # start each residual branch as identity
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(
                nn.AvgPool2d(stride, ceil_mode=True, count_include_pad=False) if stride > 1 else nn.Identity(),
                nn.Conv2d(cin, cout, 1, bias=False),
                nn.BatchNorm2d(cout),
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        s = x if self.short is None else self.short(x)
        return self.relu(self.b(self.a(x)) + s)


class Net(nn.Module):
    def __init__(self, widths=(32, 64, 128, 256, 384), blocks=(1, 1, 2, 1), classes=3, dropout=0.2):
        super().__init__()
        w0 = widths[0]
        self.stem = nn.Sequential(conv_bn(3, w0 // 2, 2), conv_bn(w0 // 2, w0))
        layers, cin = [], w0
        for w, n in zip(widths[1:], blocks):
            for i in range(n):
                layers.append(Block(cin, w, 2 if i == 0 else 1))
                cin = w
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(cin, classes)
        )

    def forward(self, x):
        return self.head(self.body(self.stem(x)))


def count_macs(model, size):
    """Multiply-accumulates of convs and linears for one image of size x size."""
    macs = []

    def hook(m, inp, out):
        if isinstance(m, nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
            macs.append(out.numel() * k)
        elif isinstance(m, nn.Linear):
            macs.append(m.in_features * m.out_features)

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    model.train(was)
    for h in hs:
        h.remove()
    return sum(macs)
