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


class Clamp6(nn.Module):
    """ReLU6 written as clamp(0, 6): the same function (ONNX Clip), but with a bfloat16
    backward in PyTorch 1.13, whose ReLU6 (hardtanh) has none on CPU."""

    def forward(self, x):
        return torch.clamp(x, 0.0, 6.0)


class MobileNetV2(nn.Module):
    """torchvision's MobileNetV2 with a new head, for fine-tuning a pretrained backbone.

    `frozen` leading blocks of `features` run without gradients (their parameters are
    not trained): the first blocks see pixels at high resolution, cost most of the
    backward pass and hold generic edges and textures. `frozen=len(features)` trains
    the head alone. Batch-norm statistics stay fixed (eval mode) while training: the
    pretrained ones are folded pass-throughs (pretrained.py) and batches here are
    small; their affine parameters still train.
    """

    def __init__(self, classes=3, dropout=0.2):
        super().__init__()
        import torchvision

        base = torchvision.models.mobilenet_v2()
        for mod in base.modules():
            for name, child in mod.named_children():
                if isinstance(child, nn.ReLU6):
                    setattr(mod, name, Clamp6())
        self.features = base.features
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(base.last_channel, classes))
        self.frozen = 0

    def load_backbone(self, state_dict):
        """Takes the `features.*` tensors of a torchvision mobilenet_v2 state dict."""
        feats = {k[len("features."):]: v for k, v in state_dict.items() if k.startswith("features.")}
        self.features.load_state_dict(feats, strict=True)

    def freeze(self, blocks):
        self.frozen = blocks
        for i, block in enumerate(self.features):
            for p in block.parameters():
                p.requires_grad_(i >= blocks)

    def train(self, mode=True):
        super().train(mode)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self

    def forward(self, x):
        if self.frozen and self.training:
            with torch.no_grad():
                x = self.features[:self.frozen](x)
            x = self.features[self.frozen:](x)
        else:
            x = self.features(x)
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))
