"""Train the default catsdogs classifier, export it to ONNX, write its model card and
parity file.

    /usr/bin/python3 model/training/train.py --export resources

The default recipe fine-tunes torchvision's ImageNet-pretrained MobileNetV2
(`--pretrained`, converted to floats by pretrained.py): the new 3-class head is
trained alone first (`--freeze-epochs`), then the backbone past its first
`--freeze-blocks` blocks joins at `--backbone-lr` times the head's rate. Photos
of people (`--people`) join the `other` class of train/ and val/; their test/
is reported on its own. A temperature fitted on val/ calibrates the exported
probabilities. `--arch resnet --pretrained none` is the from-scratch recipe of v1-v3.

Long runs are made of stints. Every epoch writes <out>/ckpt.pt (model, EMA,
optimiser, every RNG and the stint log), so an interruption loses at most one
epoch and rerunning the same command continues exactly where it stopped: the
learning rate, the image size, the data order and the augmentation are pure
functions of (seed, epoch, step). `--stint-minutes M` ends a stint on purpose
after the first epoch that passes M minutes. <out> defaults to a folder under
~/.cache (or $CATSDOGS_TRAIN_DIR) so `make clean` or a fresh checkout keeps it.

Splits: fit on train/, select on val/ (epoch and input resolution), report test/ once.
"""

import argparse
import contextlib
import csv
import datetime
import json
import math
import os
import platform
import random
import shutil
import subprocess
import time
from multiprocessing import Pool

import numpy as np
import torch
import torch.nn.functional as F

import preprocess as pp
from net import MobileNetV2, Net, count_macs
from onnx_meta import add_metadata

CLASSES = ("cat", "dog", "other")
LABELS = ("Cat", "Dog", "Other")


def log(*a):
    print(*a, flush=True)


def default_out(name, version):
    root = os.environ.get("CATSDOGS_TRAIN_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "catsdogs", "train")
    return os.path.join(root, f"{name}-v{version}")


def list_split(root, split, limit, extra=""):
    """(path relative to root, class) of a split; `extra` is a second dataset in the same
    layout (classes it lacks are skipped) whose paths are given relative to root too."""
    items = []
    for base in [root] + ([extra] if extra else []):
        prefix = os.path.relpath(base, root)
        for ci, c in enumerate(CLASSES):
            d = os.path.join(base, split, c)
            if base != root and not os.path.isdir(d):
                continue
            names = sorted(os.listdir(d))
            if limit:
                names = names[:limit]
            items += [(os.path.normpath(os.path.join(prefix, split, c, n)), ci) for n in names]
    return items


def read_sources(root, extra=""):
    """file (relative to root) -> source repository, from the datasets' manifests."""
    out = {}
    for base in [root] + ([extra] if extra else []):
        path = os.path.join(base, "manifest.csv")
        if not os.path.exists(path):
            continue
        prefix = os.path.relpath(base, root)
        with open(path, newline="") as f:
            out |= {os.path.normpath(os.path.join(prefix, r["file"])): r["source_repo"] for r in csv.DictReader(f)}
    return out


def _cache_one(args):
    path, size = args
    im = pp.resize_center_crop(pp.load_rgb(path), size, size)
    return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1).copy()


def build_cache(root, items, size, path, workers):
    """Decode a split once into a uint8 N x 3 x size x size tensor (cached on disk)."""
    if os.path.exists(path):
        return torch.load(path)
    t0 = time.time()
    with Pool(workers) as p:
        arrs = p.map(_cache_one, [(os.path.join(root, f), size) for f, _ in items], chunksize=64)
    x = torch.from_numpy(np.stack(arrs))
    y = torch.tensor([c for _, c in items])
    torch.save((x, y), path + ".tmp")
    os.replace(path + ".tmp", path)
    log(f"cached {len(items)} images at {size}px in {time.time() - t0:.0f}s -> {path}")
    return x, y


def _uniform(n, lo, hi, gen):
    return torch.rand(n, generator=gen) * (hi - lo) + lo


def augment(xb, out_size, gen, erase_p=0.0):
    """Batched random-resized-crop, flip, colour jitter and random erasing on uint8 NCHW."""
    n = xb.shape[0]
    x = xb.float().div_(255)
    area = _uniform(n, 0.25, 1.0, gen)
    logr = _uniform(n, math.log(3 / 4), math.log(4 / 3), gen)
    w = torch.sqrt(area * torch.exp(logr)).clamp(max=1.0)
    h = torch.sqrt(area / torch.exp(logr)).clamp(max=1.0)
    cx = _uniform(n, -1, 1, gen) * (1 - w)
    cy = _uniform(n, -1, 1, gen) * (1 - h)
    flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = w * flip
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = h
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta, (n, 3, out_size, out_size), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    gray_w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    b = _uniform(n, 0.65, 1.35, gen).view(n, 1, 1, 1)
    c = _uniform(n, 0.65, 1.35, gen).view(n, 1, 1, 1)
    s = _uniform(n, 0.6, 1.4, gen)
    s = torch.where(torch.rand(n, generator=gen) < 0.05, 0.0, s).view(n, 1, 1, 1)
    x = x * b
    g = (x * gray_w).sum(1, keepdim=True)
    x = (x - g.mean((2, 3), keepdim=True)) * c + g.mean((2, 3), keepdim=True)
    g = (x * gray_w).sum(1, keepdim=True)
    x = normalize((g + (x - g) * s).clamp_(0, 1))
    if erase_p > 0:
        x = random_erase(x, gen, erase_p)
    return x


def _boxes(n, size, area, logr, gen):
    """Per-image boolean masks of one random axis-aligned box (area fraction, log aspect)."""
    bw = (torch.sqrt(area * torch.exp(logr)) * size).clamp(1, size)
    bh = (torch.sqrt(area / torch.exp(logr)) * size).clamp(1, size)
    x0 = torch.rand(n, generator=gen) * (size - bw)
    y0 = torch.rand(n, generator=gen) * (size - bh)
    r = torch.arange(size).float()
    inx = (r.view(1, -1) >= x0.view(-1, 1)) & (r.view(1, -1) < (x0 + bw).view(-1, 1))
    iny = (r.view(1, -1) >= y0.view(-1, 1)) & (r.view(1, -1) < (y0 + bh).view(-1, 1))
    return (iny.view(n, 1, size, 1) & inx.view(n, 1, 1, size)), (bw.round() * bh.round()) / (size * size)


def random_erase(x, gen, p):
    """RandomErasing: with probability p, one box of 2-25 % of the image becomes noise."""
    n, _, size, _ = x.shape
    mask, _ = _boxes(n, size, _uniform(n, 0.02, 0.25, gen), _uniform(n, math.log(0.3), math.log(3.3), gen), gen)
    mask &= (torch.rand(n, generator=gen) < p).view(n, 1, 1, 1)
    return torch.where(mask, torch.randn(x.shape, generator=gen), x)


def mix(x, y, gen, p):
    """With probability p per batch, CutMix (half the time) or MixUp: returns x, y_a, y_b, lam."""
    if p <= 0 or float(torch.rand(1, generator=gen)) >= p:
        return x, y, y, 1.0
    n, _, size, _ = x.shape
    perm = torch.randperm(n, generator=gen)
    lam = float(np.random.default_rng(int(torch.randint(2**31, (1,), generator=gen))).beta(1.0, 1.0))
    if float(torch.rand(1, generator=gen)) < 0.5:
        area = torch.full((1,), 1 - lam)
        mask, frac = _boxes(1, size, area, torch.zeros(1), gen)
        x = torch.where(mask, x[perm], x)
        lam = 1 - float(frac)
    else:
        lam = max(lam, 1 - lam)  # keep the first image dominant so train accuracy stays meaningful
        x = lam * x + (1 - lam) * x[perm]
    return x, y, y[perm], lam


def normalize(x):
    m = torch.tensor(pp.MEAN).view(1, 3, 1, 1)
    s = torch.tensor(pp.STD).view(1, 3, 1, 1)
    return (x - m) / s


def macro_acc(cm):
    cm = np.asarray(cm, dtype=np.float64)
    return float(np.mean(np.diag(cm) / np.maximum(cm.sum(1), 1)))


def confusion(pred, y, k=3):
    cm = np.zeros((k, k), dtype=np.int64)
    for t, p in zip(y, pred):
        cm[int(t), int(p)] += 1
    return cm


def by_source(items, pred, sources):
    """Accuracy per (source repository, class): where the model is strong and weak.
    Empty without a manifest (the committed fixtures have none)."""
    if not sources:
        return {}
    groups = {}
    for (f, c), p in zip(items, pred):
        g = groups.setdefault(f"{sources.get(f, 'unknown')} ({CLASSES[c]})", [0, 0])
        g[0] += int(int(p) == c)
        g[1] += 1
    return {k: dict(n=n, correct=ok, accuracy=ok / n) for k, (ok, n) in sorted(groups.items())}


@torch.no_grad()
def eval_cached(model, x, y, size, device, amp):
    """Fast validation on the cached tensors (approximates the reference path)."""
    model.eval()
    preds = []
    for i in range(0, len(x), 256):
        xb = x[i:i + 256].float().div_(255)
        if xb.shape[-1] != size:
            xb = F.interpolate(xb, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        with amp():
            preds.append(model(normalize(xb).to(device)).float().argmax(1).cpu())
    model.train()
    return confusion(torch.cat(preds), y)


@torch.no_grad()
def predict_reference(model, root, items, resize, size, device, workers, batch=128):
    """Logits through the exact serving preprocessing, in float32."""
    model.eval()
    out = []
    with Pool(workers) as p:
        for i in range(0, len(items), batch):
            chunk = [os.path.join(root, f) for f, _ in items[i:i + batch]]
            arrs = p.starmap(pp.reference_input, [(f, resize, size) for f in chunk])
            xb = torch.from_numpy(np.stack(arrs)).to(device)
            out.append(model(xb).float().cpu())
    return torch.cat(out)


class EMA:
    """Exponential moving average of weights (and BN statistics) for evaluation."""

    def __init__(self, model, decay):
        self.decay = decay
        self.model = make_model(model.cfg).to(next(model.parameters()).device)
        self.model.load_state_dict(model.state_dict())
        self.model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model, step):
        d = min(self.decay, (1 + step) / (10 + step))
        for e, m in zip(self.model.state_dict().values(), model.state_dict().values()):
            if e.dtype.is_floating_point:
                e.mul_(d).add_(m.detach(), alpha=1 - d)
            else:
                e.copy_(m)


def make_model(cfg):
    if cfg.get("arch") == "mobilenet_v2":
        m = MobileNetV2(classes=len(CLASSES), dropout=cfg["dropout"])
    else:
        m = Net(widths=cfg["widths"], blocks=cfg["blocks"])
    m.cfg = cfg
    return m


def expected_calibration_error(probs, y, bins=15):
    """ECE with equal-width confidence bins: sum over bins of |accuracy - confidence| x share."""
    conf, pred = probs.max(1)
    right = (pred == torch.as_tensor(y)).float()
    ece = 0.0
    for lo in range(bins):
        m = (conf > lo / bins) & (conf <= (lo + 1) / bins)
        if m.any():
            ece += float(m.float().mean() * (right[m].mean() - conf[m].mean()).abs())
    return ece


def fit_temperature(logits, y):
    """The T > 0 minimising the negative log-likelihood of softmax(logits / T) (Guo et al., 2017)."""
    y = torch.as_tensor(y)
    log_t = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), y)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.exp())


class Calibrated(torch.nn.Module):
    """The exported graph: the classifier's logits divided by the fitted temperature, so
    every consumer of the ONNX file gets calibrated probabilities from a plain softmax."""

    def __init__(self, model, temperature):
        super().__init__()
        self.model = model
        self.register_buffer("inv_t", torch.tensor(1.0 / temperature))

    def forward(self, x):
        return self.model(x) * self.inv_t


class Schedule:
    """Learning rate and training image size as pure functions of step / epoch.

    `wsd` (warm-up, stable, decay) holds the peak rate and decays to 0 over the
    last `cooldown` fraction of the epochs. Unlike cosine, the stable part does
    not depend on the total, so a run can be lengthened between stints, or
    shortened to end sooner, without changing what was already trained.
    """

    def __init__(self, a, steps_per_epoch):
        self.a = a
        self.spe = steps_per_epoch
        self.total = steps_per_epoch * a.epochs
        self.warm = min(2 * steps_per_epoch, self.total // 4 + 1)
        plan = sorted((float(f), int(s)) for s, f in (p.split("@") for p in a.size_plan.split(",")))
        self.plan = plan

    def lr(self, step):
        a = self.a
        if step < self.warm:
            return a.lr * (step + 1) / self.warm
        if a.schedule == "cosine":
            return a.lr * 0.5 * (1 + math.cos(math.pi * (step - self.warm) / max(1, self.total - self.warm)))
        decay_start = int(self.total * (1 - a.cooldown))
        if step < decay_start:
            return a.lr
        t = (step - decay_start) / max(1, self.total - decay_start)
        return a.lr * 0.5 * (1 + math.cos(math.pi * t))

    def decay_epoch(self):
        """Epochs completed when the wsd decay begins."""
        return int(self.total * (1 - self.a.cooldown)) // self.spe

    def size(self, epoch):
        frac = epoch / max(1, self.a.epochs)
        return [s for f, s in self.plan if f <= frac + 1e-9][-1]


def cpu_has_bf16():
    try:
        with open("/proc/cpuinfo") as f:
            return "avx512_bf16" in f.read()
    except OSError:
        return False


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()} ({len(os.sched_getaffinity(0))} cores)"
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_rev():
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], text=True,
                                       stderr=subprocess.DEVNULL).strip()
    except Exception:
        return "unknown"


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/datasets/pets")
    ap.add_argument("--out", default="", help="work dir: caches, checkpoints, log (default: ~/.cache/catsdogs/train/NAME-vVERSION)")
    ap.add_argument("--export", default="", help="dir to write the ONNX, card and parity file into")
    ap.add_argument("--people", default="../shared/datasets/people",
                    help="photos of people in the same layout, all other: joins train/ and val/, test/ reported apart "
                         "('' = none)")
    ap.add_argument("--name", default="catsdogs-mobilenet")
    ap.add_argument("--version", default="4")
    ap.add_argument("--arch", choices=("mobilenet_v2", "resnet"), default="mobilenet_v2")
    ap.add_argument("--pretrained", default="../shared/pretrained/mobilenet_v2/mobilenet_v2_quantized.pt",
                    help="mobilenet_v2: the int8 ImageNet TorchScript file pretrained.py converts ('none' = random init)")
    ap.add_argument("--freeze-epochs", type=int, default=1, help="mobilenet_v2: first epochs train the head alone")
    ap.add_argument("--freeze-blocks", type=int, default=7, help="mobilenet_v2: leading feature blocks never trained")
    ap.add_argument("--backbone-lr", type=float, default=0.1, help="mobilenet_v2: backbone rate = this x --lr")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--opt", choices=("adamw", "sgd"), default="adamw")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--schedule", choices=("wsd", "cosine"), default="cosine")
    ap.add_argument("--cooldown", type=float, default=0.2, help="wsd: fraction of epochs spent decaying to 0")
    ap.add_argument("--wd", type=float, default=0.01)
    ap.add_argument("--smoothing", type=float, default=0.1)
    ap.add_argument("--ema", type=float, default=0.997)
    ap.add_argument("--size-plan", default="160@0,192@0.5",
                    help="training resolution by fraction of the run: SIZE@FROM,... (progressive resizing)")
    ap.add_argument("--mix", type=float, default=0.2, help="probability a batch gets CutMix or MixUp")
    ap.add_argument("--erase", type=float, default=0.1, help="RandomErasing probability per image")
    ap.add_argument("--cache-size", type=int, default=160)
    ap.add_argument("--val-size", type=int, default=160, help="resolution of the per-epoch val check")
    ap.add_argument("--eval-sizes", default="160,192,224", help="served resolutions to choose from on val")
    ap.add_argument("--widths", default="24,48,96,192,320", help="resnet")
    ap.add_argument("--blocks", default="1,1,2,1", help="resnet")
    ap.add_argument("--limit", type=int, default=0, help="images per class per split (smoke runs)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--stint-minutes", type=float, default=0, help="end this stint after the epoch that passes M minutes")
    ap.add_argument("--parity-per-class", type=int, default=2)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--no-bf16", dest="bf16", action="store_false", help="train in float32 on CPU")
    a = ap.parse_args()
    a.out = a.out or default_out(a.name, a.version)
    if a.people and not os.path.isdir(os.path.join(a.people, "train")):
        log(f"no people dataset at {a.people}: training without it")
        a.people = ""
    if a.arch == "mobilenet_v2" and a.pretrained != "none" and not os.path.exists(a.pretrained):
        raise SystemExit(f"no pretrained backbone at {a.pretrained} (pass --pretrained none for a random init)")
    return a


def rng_state():
    return dict(torch=torch.get_rng_state(), numpy=np.random.get_state(), python=random.getstate())


def set_rng_state(s):
    torch.set_rng_state(s["torch"])
    np.random.set_state(s["numpy"])
    random.setstate(s["python"])


def train(a, device, amp, memory_format, hw, workers):
    """Runs (or resumes) the epochs of this stint. Returns (cfg, history, stints, finished)."""
    tr_items = list_split(a.data, "train", a.limit, a.people)
    va_items = list_split(a.data, "val", a.limit, a.people)
    tag = f"{a.cache_size}_{a.limit}_{len(tr_items)}_{len(va_items)}"
    xtr, ytr = build_cache(a.data, tr_items, a.cache_size, os.path.join(a.out, f"cache_train_{tag}.pt"), workers)
    xva, yva = build_cache(a.data, va_items, a.cache_size, os.path.join(a.out, f"cache_val_{tag}.pt"), workers)

    if a.arch == "mobilenet_v2":
        cfg = dict(arch="mobilenet_v2", dropout=0.2)
    else:
        cfg = dict(widths=tuple(int(v) for v in a.widths.split(",")), blocks=tuple(int(v) for v in a.blocks.split(",")))
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)
    random.seed(a.seed)
    macs128 = count_macs(make_model(cfg), 128)
    model = make_model(cfg)
    if a.arch == "mobilenet_v2":
        if a.pretrained == "none":
            log("backbone: randomly initialised (--pretrained none): a pipeline check, not a useful model")
        else:
            import pretrained

            model.load_backbone(pretrained.float_state_dict(pretrained.load_quantized(a.pretrained)))
            log(f"backbone: ImageNet-pretrained weights from {a.pretrained} (sha256 checked)")
    model = model.to(device).to(memory_format=memory_format)
    ema = EMA(model, a.ema)
    # Parameter groups: (backbone?, decayed?). The backbone learns at --backbone-lr x the
    # head's rate so fine-tuning adjusts the ImageNet features rather than erasing them.
    groups = {}
    for name, p in model.named_parameters():
        backbone = a.arch == "mobilenet_v2" and name.startswith("features.")
        groups.setdefault((backbone, p.ndim > 1), []).append(p)
    param_groups = [{"params": ps, "weight_decay": a.wd if decayed else 0.0, "lr_mult": a.backbone_lr if backbone else 1.0}
                    for (backbone, decayed), ps in sorted(groups.items())]
    if a.opt == "adamw":
        # The int8 export folded batch-norm into the convolutions, so the float copy's
        # layers have very different weight scales; SGD diverged on it at backbone
        # rates down to 0.002 (grad/weight norm ratios near 2), AdamW's per-weight
        # step sizes did not.
        opt = torch.optim.AdamW(param_groups, lr=a.lr)
    else:
        opt = torch.optim.SGD(param_groups, lr=a.lr, momentum=0.9, nesterov=True)
    spe = max(1, len(xtr) // a.batch)
    sched = Schedule(a, spe)
    counts = torch.bincount(ytr, minlength=3).float()
    class_w = (counts.sum() / (3 * counts.clamp(min=1))).to(device)
    crit = torch.nn.CrossEntropyLoss(weight=class_w, label_smoothing=a.smoothing)

    ckpt_path = os.path.join(a.out, "ckpt.pt")
    best_path = os.path.join(a.out, "best.pt")
    start, history, best, stints = 0, [], -1.0, []
    if os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path, map_location=device)
        model.load_state_dict(ck["model"])
        ema.model.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["opt"])
        start, history, best = ck["epoch"], ck["history"], ck["best"]
        stints = ck.get("stints", [])
        if "rng" in ck:
            set_rng_state(ck["rng"])
        log(f"resumed from {ckpt_path} at epoch {start} ({len(stints)} earlier stints)")
    stint = dict(stint=len(stints) + 1, start_epoch=start, end_epoch=start, minutes=0.0, hardware=hw,
                 device=str(device), started=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    if start < a.epochs:  # a rerun after the last epoch only selects and exports
        stints.append(stint)

    params = sum(p.numel() for p in model.parameters())
    log(f"model {cfg} params={params / 1e6:.2f}M MACs@128={macs128 / 1e6:.0f}M "
        f"train={len(xtr)} val={len(xva)} epochs={a.epochs} batch={a.batch} schedule={a.schedule} "
        f"sizes={a.size_plan} mix={a.mix} erase={a.erase}")

    t_stint = time.time()
    epoch = start
    for epoch in range(start, a.epochs):
        t0 = time.time()
        size = sched.size(epoch)
        if hasattr(model, "freeze"):
            model.freeze(len(model.features) if epoch < a.freeze_epochs else a.freeze_blocks)
        gen = torch.Generator().manual_seed(a.seed * 1000 + epoch)
        perm = torch.randperm(len(xtr), generator=gen)
        model.train()
        tot_loss, tot_n, correct = 0.0, 0, 0
        for i in range(spe):
            step = epoch * spe + i
            for g in opt.param_groups:
                g["lr"] = sched.lr(step) * g["lr_mult"]
            idx = perm[i * a.batch:(i + 1) * a.batch]
            xb = augment(xtr[idx], size, gen, a.erase)
            xb, ya, yb, lam = mix(xb, ytr[idx], gen, a.mix)
            xb = xb.to(device).contiguous(memory_format=memory_format)
            ya, yb = ya.to(device), yb.to(device)
            with amp():
                out = model(xb)
            out = out.float()
            loss = crit(out, ya) if lam == 1.0 else lam * crit(out, ya) + (1 - lam) * crit(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            ema.update(model, step)
            tot_loss += loss.item() * len(idx)
            tot_n += len(idx)
            correct += (out.argmax(1) == ya).sum().item()
        cm = eval_cached(ema.model, xva, yva, a.val_size, device, amp)
        va = macro_acc(cm)
        dt = time.time() - t0
        done = epoch + 1
        history.append(dict(epoch=done, loss=tot_loss / tot_n, train_acc=correct / tot_n, val_macro=va,
                            lr=sched.lr(step), size=size, seconds=dt, stint=stint["stint"]))
        stint.update(end_epoch=done, minutes=(time.time() - t_stint) / 60)
        eta = (time.time() - t_stint) / (done - start) * (a.epochs - done)
        log(f"epoch {done:3d}/{a.epochs} size {size} loss {tot_loss / tot_n:.4f} train_acc {correct / tot_n:.4f} "
            f"val_macro {va:.4f} lr {sched.lr(step):.4f} epoch_s {dt:.0f} stint {stint['minutes']:.1f}m "
            f"eta {eta / 60:.0f}m")
        if va >= best:
            best = va
            torch.save({"ema": ema.model.state_dict(), "epoch": done, "val_macro": va}, best_path + ".tmp")
            os.replace(best_path + ".tmp", best_path)
        torch.save({"model": model.state_dict(), "ema": ema.model.state_dict(), "opt": opt.state_dict(),
                    "epoch": done, "history": history, "best": best, "stints": stints, "rng": rng_state()},
                   ckpt_path + ".tmp")
        os.replace(ckpt_path + ".tmp", ckpt_path)
        if a.schedule == "wsd" and done == sched.decay_epoch():
            # The last checkpoint at the peak rate: a longer run can branch from
            # it later (copy to ckpt.pt, rerun with more --epochs) instead of
            # starting over, since nothing before the decay depends on the total.
            shutil.copyfile(ckpt_path, os.path.join(a.out, f"stable_e{done}.pt"))
        if a.stint_minutes and stint["minutes"] >= a.stint_minutes and done < a.epochs:
            break
    finished = bool(history) and history[-1]["epoch"] >= a.epochs
    if start >= a.epochs:
        return cfg, history, stints, finished
    log(f"stint {stint['stint']}: epochs {stint['start_epoch']}->{stint['end_epoch']} of {a.epochs} "
        f"in {stint['minutes']:.1f} min on {hw}" + ("" if finished else "; rerun the same command to continue"))
    return cfg, history, stints, finished


def main():
    a = parse_args()
    ncpu = len(os.sched_getaffinity(0))
    # Debian's torch starts with one thread; use every core we are allowed.
    torch.set_num_threads(a.threads or ncpu)
    workers = a.workers or ncpu
    device = torch.device("cuda" if a.device == "auto" and torch.cuda.is_available() else
                          (a.device if a.device != "auto" else "cpu"))
    if device.type == "cuda":
        amp = lambda: torch.autocast("cuda", dtype=torch.bfloat16)  # noqa: E731
    elif a.bf16 and cpu_has_bf16():
        amp = lambda: torch.autocast("cpu", dtype=torch.bfloat16)  # noqa: E731
    else:
        amp = contextlib.nullcontext
    # channels_last pays off with bf16 kernels and on GPUs; in plain float32 on
    # an AVX2 CPU it measured ~5% slower, so keep the default layout there.
    memory_format = torch.contiguous_format if amp is contextlib.nullcontext else torch.channels_last
    os.makedirs(a.out, exist_ok=True)
    hw = torch.cuda.get_device_name(0) if device.type == "cuda" else cpu_name()
    log(f"torch {torch.__version__} device={device} threads={torch.get_num_threads()} cpu={hw} out={a.out}")

    cfg, history, stints, finished = train(a, device, amp, memory_format, hw, workers)
    if finished:
        finish(a, cfg, history, stints, hw, device, amp, workers)


def finish(a, cfg, history, stints, hw, device, amp, workers):
    """Selection on val (best epoch, then served resolution), one look at test, export."""
    va_items = list_split(a.data, "val", a.limit, a.people)
    te_items = list_split(a.data, "test", a.limit)
    sources = read_sources(a.data, a.people)
    bk = torch.load(os.path.join(a.out, "best.pt"), map_location="cpu")
    final = make_model(cfg)
    final.load_state_dict(bk["ema"])
    final.eval()
    log(f"selected epoch {bk['epoch']} (val_macro {bk['val_macro']:.4f} on cached val)")
    sizes = [int(s) for s in a.eval_sizes.split(",")]
    val_by_size, val_logits = {}, {}
    for s in sizes:
        val_logits[s] = predict_reference(final, a.data, va_items, s, s, "cpu", workers)
        val_by_size[s] = macro_acc(confusion(val_logits[s].argmax(1), [c for _, c in va_items]))
        log(f"val (reference preprocessing) at {s}px: macro {val_by_size[s]:.4f}")
    size = max(sizes, key=lambda s: (val_by_size[s], -s))
    log(f"served resolution: {size}px")
    yva = [c for _, c in va_items]
    temperature = fit_temperature(val_logits[size], yva)
    log(f"temperature fitted on val: {temperature:.4f}")

    # ---- the one look at test ----
    raw = predict_reference(final, a.data, te_items, size, size, "cpu", workers)
    logits = raw / temperature
    yte = [c for _, c in te_items]
    ece = dict(bins=15, before=expected_calibration_error(torch.softmax(raw, 1), yte),
               after=expected_calibration_error(torch.softmax(logits, 1), yte))
    log(f"test ECE (15 bins): {ece['before']:.4f} before temperature scaling, {ece['after']:.4f} after")
    people = None
    if a.people:
        pe_items = list_split(a.data, "test", a.limit, a.people)[len(te_items):]
        pe_pred = predict_reference(final, a.data, pe_items, size, size, "cpu", workers).argmax(1)
        people = dict(n=len(pe_items), other=int((pe_pred == 2).sum()),
                      predicted=[int((pe_pred == k).sum()) for k in range(3)])
        people["accuracy"] = people["other"] / max(1, people["n"])
        log(f"people test/: {people['other']}/{people['n']} called Other ({people['accuracy']:.4f})")
    cm = confusion(logits.argmax(1), yte)
    test_macro = macro_acc(cm)
    log(f"TEST macro accuracy {test_macro:.4f} at {size}px; confusion (rows=true {LABELS}):\n{cm}")
    test_by_source = by_source(te_items, logits.argmax(1), sources)
    for k, v in test_by_source.items():
        log(f"  test {k}: {v['accuracy']:.4f} ({v['correct']}/{v['n']})")
    # Parity set: first images of each class by name, plus a few the model gets wrong.
    probs = torch.softmax(logits, 1)
    parity_idx = []
    for ci in range(3):
        parity_idx += [i for i, (_, c) in enumerate(te_items) if c == ci][:a.parity_per_class]
    wrong = [i for i in range(len(te_items)) if int(logits[i].argmax()) != yte[i]]
    parity_idx += wrong[:2]

    macs = count_macs(final, size)
    backbone = None
    if a.arch == "mobilenet_v2" and a.pretrained != "none":
        import pretrained

        path = os.path.join(a.out, f"pretrained_agreement_{a.limit}.json")
        if not os.path.exists(path):
            with open(path, "w") as f:
                json.dump(pretrained.agreement(a.pretrained, a.data, limit=a.limit), f, indent=1)
        with open(path) as f:
            backbone = json.load(f)
        log(f"pretrained conversion: top-1 agreement {backbone['agreement']:.4f}, "
            f"worst op {backbone['worst_op_error_steps']} steps")
    metrics = dict(
        name=a.name, version=a.version, git=git_rev(), arch=a.arch, backbone=backbone,
        cfg={k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
        temperature=temperature, test_ece=ece, people_test=people,
        params=sum(p.numel() for p in final.parameters()), macs=macs, flops=2 * macs, size=size,
        epochs=a.epochs, selected_epoch=bk["epoch"], val_by_size=val_by_size, test_macro=test_macro,
        test_per_class=[float(cm[i, i] / max(cm[i].sum(), 1)) for i in range(3)],
        test_confusion=cm.tolist(), test_n=len(te_items), train_n=len(list_split(a.data, "train", a.limit, a.people)),
        val_n=len(va_items), test_by_source=test_by_source,
        val_by_source=by_source(va_items, val_logits[size].argmax(1), sources),
        train_minutes=sum(s["minutes"] for s in stints), stints=stints, hardware=hw,
        threads=torch.get_num_threads(), device=str(device),
        precision="float32" if amp is contextlib.nullcontext else "bfloat16 autocast",
        torch=torch.__version__, args=vars(a), history=history,
    )
    with open(os.path.join(a.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1)
    if not a.export:
        return
    export(a, Calibrated(final, temperature).eval(), size, metrics, te_items, logits, probs, parity_idx)


def previous_default(export_dir, version):
    """Headline figures of the model this export replaces, for the card's comparison."""
    try:
        with open(os.path.join(export_dir, "metrics.json")) as f:
            m = json.load(f)
    except (OSError, ValueError):
        return None
    if str(m.get("version")) == str(version):
        return m.get("previous")  # re-exporting the same version keeps its comparison
    keys = ("name", "version", "onnx_file", "test_macro", "test_per_class", "size", "params", "flops", "onnx_bytes",
            "epochs", "train_minutes", "precision", "hardware", "val_by_size", "test_by_source")
    return {k: m[k] for k in keys if k in m}


def export(a, final, size, metrics, te_items, logits, probs, parity_idx):
    os.makedirs(a.export, exist_ok=True)
    metrics["previous"] = previous_default(a.export, a.version)
    onnx_path = os.path.join(a.export, f"{a.name}.onnx")
    torch.onnx.export(final, torch.zeros(1, 3, size, size), onnx_path, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                      opset_version=13, do_constant_folding=True)
    meta = {
        "name": a.name, "version": a.version, "labels": json.dumps(list(LABELS)),
        "layout": "NCHW", "input_size": f"{size}x{size}", "resize": "shorter_side_center_crop",
        "resize_shorter": str(size), "resample": "bilinear_antialias", "channel_order": "RGB",
        "pixel_scale": repr(1 / 255), "mean": ",".join(map(str, pp.MEAN)), "std": ",".join(map(str, pp.STD)),
        "output": "logits",
        "test_macro_accuracy": f"{metrics['test_macro']:.4f}", "trained_by": "model/training/train.py",
        "temperature": f"{metrics['temperature']:.4f}",
    }
    add_metadata(onnx_path, meta)
    parity = dict(model=os.path.basename(onnx_path), dataset="datasets/pets", atol=2e-4, images=[
        dict(file=te_items[i][0], label=LABELS[te_items[i][1]], logits=[round(float(v), 6) for v in logits[i]],
             probabilities=[round(float(v), 6) for v in probs[i]]) for i in parity_idx])
    with open(os.path.join(a.export, "parity.json"), "w") as f:
        json.dump(parity, f, indent=1)
    metrics["onnx_bytes"] = os.path.getsize(onnx_path)
    metrics["onnx_file"] = os.path.basename(onnx_path)
    metrics["metadata"] = meta
    history = metrics.pop("history")
    with open(os.path.join(a.export, "metrics.json"), "w") as f:
        json.dump(metrics | {"history": history}, f, indent=1)
    metrics["history"] = history
    import card  # imported late so a card fix applies on a resumed run

    card.write(os.path.join(a.export, "MODEL.md"), metrics)
    log(f"exported {onnx_path} ({metrics['onnx_bytes'] / 1e6:.1f} MB), parity.json, MODEL.md")


if __name__ == "__main__":
    main()
