"""Train the default catsdogs classifier from scratch, export it to ONNX, write its
model card and parity file.

    /usr/bin/python3 model/training/train.py --out build/train/default --export resources

Resumable: every epoch writes <out>/ckpt.pt; rerunning the same command continues.
Splits: fit on train/, select on val/ (epoch and input resolution), report test/ once.
"""

import argparse
import contextlib
import json
import math
import os
import platform
import subprocess
import sys
import time
from multiprocessing import Pool

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from net import Net, count_macs  # noqa: E402
from onnx_meta import add_metadata  # noqa: E402
import preprocess as pp  # noqa: E402

CLASSES = ("cat", "dog", "other")
MEMORY_FORMAT = torch.contiguous_format
LABELS = ("Cat", "Dog", "Other")


def log(*a):
    print(*a, flush=True)


def list_split(root, split, limit):
    items = []
    for ci, c in enumerate(CLASSES):
        d = os.path.join(root, split, c)
        names = sorted(os.listdir(d))
        if limit:
            names = names[:limit]
        items += [(os.path.join(split, c, n), ci) for n in names]
    return items


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


def augment(xb, out_size, gen):
    """Batched random-resized-crop, flip and colour jitter on uint8 NCHW tensors."""
    n = xb.shape[0]
    x = xb.float().div_(255)

    def U(lo, hi):
        return torch.rand(n, generator=gen) * (hi - lo) + lo

    area = U(0.25, 1.0)
    logr = U(math.log(3 / 4), math.log(4 / 3))
    w = torch.sqrt(area * torch.exp(logr)).clamp(max=1.0)
    h = torch.sqrt(area / torch.exp(logr)).clamp(max=1.0)
    cx = U(-1, 1) * (1 - w)
    cy = U(-1, 1) * (1 - h)
    flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = w * flip
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = h
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta, (n, 3, out_size, out_size), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    gray_w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    b = U(0.65, 1.35).view(n, 1, 1, 1)
    c = U(0.65, 1.35).view(n, 1, 1, 1)
    s = U(0.6, 1.4)
    s = torch.where(torch.rand(n, generator=gen) < 0.05, 0.0, s).view(n, 1, 1, 1)
    x = x * b
    g = (x * gray_w).sum(1, keepdim=True)
    x = (x - g.mean((2, 3), keepdim=True)) * c + g.mean((2, 3), keepdim=True)
    g = (x * gray_w).sum(1, keepdim=True)
    x = (g + (x - g) * s).clamp_(0, 1)
    return normalize(x)


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


@torch.no_grad()
def eval_cached(model, x, y, size, device, amp):
    """Fast validation on the cached tensors (approximates the reference path)."""
    model.eval()
    preds = []
    for i in range(0, len(x), 256):
        xb = x[i:i + 256].float().div_(255)
        if xb.shape[-1] != size:
            xb = F.interpolate(xb, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        xb = normalize(xb).to(device).contiguous(memory_format=MEMORY_FORMAT)
        with amp():
            preds.append(model(xb).float().argmax(1).cpu())
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
        self.model = Net(**model.cfg).to(next(model.parameters()).device)
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
    m = Net(**cfg)
    m.cfg = cfg
    return m


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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/datasets/pets")
    ap.add_argument("--out", default="build/train/default", help="work dir: caches, checkpoints, log")
    ap.add_argument("--export", default="", help="dir to write the ONNX, card and parity file into")
    ap.add_argument("--name", default="catsdogs-resnet")
    ap.add_argument("--version", default="1")
    ap.add_argument("--epochs", type=int, default=32)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--wd", type=float, default=5e-4)
    ap.add_argument("--smoothing", type=float, default=0.1)
    ap.add_argument("--ema", type=float, default=0.998)
    ap.add_argument("--train-size", type=int, default=96,
                    help="training resolution; serving at a larger one (chosen on val) works better")
    ap.add_argument("--cache-size", type=int, default=160)
    ap.add_argument("--val-size", type=int, default=128, help="resolution of the per-epoch val check")
    ap.add_argument("--eval-sizes", default="112,128,144", help="served resolutions to choose from on val")
    ap.add_argument("--widths", default="24,48,96,192,320")
    ap.add_argument("--blocks", default="1,1,2,1")
    ap.add_argument("--limit", type=int, default=0, help="images per class per split (smoke runs)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--parity-per-class", type=int, default=2)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--no-bf16", dest="bf16", action="store_false", help="train in float32 on CPU")
    a = ap.parse_args()

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
    global MEMORY_FORMAT
    # channels_last pays off with bf16 kernels and on GPUs; in plain float32 on
    # an AVX2 CPU it measured ~5% slower, so keep the default layout there.
    if amp is not contextlib.nullcontext:
        MEMORY_FORMAT = torch.channels_last
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(a.seed)
    np.random.seed(a.seed)

    hw = cpu_name()
    if device.type == "cuda":
        hw = torch.cuda.get_device_name(0)
    log(f"torch {torch.__version__} device={device} threads={torch.get_num_threads()} cpu={hw}")

    tr_items = list_split(a.data, "train", a.limit)
    va_items = list_split(a.data, "val", a.limit)
    te_items = list_split(a.data, "test", a.limit)
    tag = f"{a.cache_size}_{a.limit}"
    xtr, ytr = build_cache(a.data, tr_items, a.cache_size, os.path.join(a.out, f"cache_train_{tag}.pt"), workers)
    xva, yva = build_cache(a.data, va_items, a.cache_size, os.path.join(a.out, f"cache_val_{tag}.pt"), workers)

    cfg = dict(widths=tuple(int(v) for v in a.widths.split(",")), blocks=tuple(int(v) for v in a.blocks.split(",")))
    model = make_model(cfg).to(device).to(memory_format=MEMORY_FORMAT)
    ema = EMA(model, a.ema)
    ema.model.to(memory_format=MEMORY_FORMAT)
    decay, no_decay = [], []
    for n_, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    opt = torch.optim.SGD([{"params": decay, "weight_decay": a.wd}, {"params": no_decay, "weight_decay": 0}],
                          lr=a.lr, momentum=0.9, nesterov=True)
    steps_per_epoch = max(1, len(xtr) // a.batch)
    total = steps_per_epoch * a.epochs
    warm = min(2 * steps_per_epoch, total // 4 + 1)

    def lr_at(step):
        if step < warm:
            return a.lr * (step + 1) / warm
        return a.lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

    counts = torch.bincount(ytr, minlength=3).float()
    class_w = (counts.sum() / (3 * counts.clamp(min=1))).to(device)
    crit = torch.nn.CrossEntropyLoss(weight=class_w, label_smoothing=a.smoothing)

    ckpt_path = os.path.join(a.out, "ckpt.pt")
    best_path = os.path.join(a.out, "best.pt")
    start, history, best = 0, [], -1.0
    train_seconds = 0.0
    if os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path, map_location=device)
        model.load_state_dict(ck["model"])
        ema.model.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["opt"])
        start, history, best = ck["epoch"], ck["history"], ck["best"]
        train_seconds = ck.get("train_seconds", 0.0)
        log(f"resumed from {ckpt_path} at epoch {start}")

    params = sum(p.numel() for p in model.parameters())
    log(f"model {cfg} params={params / 1e6:.2f}M MACs@{a.train_size}={count_macs(ema.model.cpu(), a.train_size) / 1e6:.0f}M "
        f"train={len(xtr)} val={len(xva)} epochs={a.epochs} batch={a.batch}")
    ema.model.to(device)

    t_run = time.time()
    for epoch in range(start, a.epochs):
        t0 = time.time()
        gen = torch.Generator().manual_seed(a.seed * 1000 + epoch)
        perm = torch.randperm(len(xtr), generator=gen)
        model.train()
        tot_loss, tot_n, correct = 0.0, 0, 0
        for i in range(steps_per_epoch):
            step = epoch * steps_per_epoch + i
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            idx = perm[i * a.batch:(i + 1) * a.batch]
            xb = augment(xtr[idx], a.train_size, gen).to(device).contiguous(memory_format=MEMORY_FORMAT)
            yb = ytr[idx].to(device)
            with amp():
                out = model(xb)
                loss = crit(out.float(), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            ema.update(model, step)
            tot_loss += loss.item() * len(idx)
            tot_n += len(idx)
            correct += (out.argmax(1) == yb).sum().item()
        cm = eval_cached(ema.model, xva, yva, a.val_size, device, amp)
        va = macro_acc(cm)
        dt = time.time() - t0
        train_seconds += dt
        done = epoch + 1
        eta = (time.time() - t_run) / (done - start) * (a.epochs - done)
        history.append(dict(epoch=done, loss=tot_loss / tot_n, train_acc=correct / tot_n, val_macro=va,
                            lr=lr_at(step), seconds=dt))
        log(f"epoch {done:3d}/{a.epochs} loss {tot_loss / tot_n:.4f} train_acc {correct / tot_n:.4f} "
            f"val_macro {va:.4f} lr {lr_at(step):.4f} epoch_s {dt:.0f} elapsed {train_seconds / 60:.1f}m "
            f"eta {eta / 60:.1f}m")
        if va >= best:
            best = va
            torch.save({"ema": ema.model.state_dict(), "epoch": done, "val_macro": va}, best_path + ".tmp")
            os.replace(best_path + ".tmp", best_path)
        torch.save({"model": model.state_dict(), "ema": ema.model.state_dict(), "opt": opt.state_dict(),
                    "epoch": done, "history": history, "best": best, "train_seconds": train_seconds},
                   ckpt_path + ".tmp")
        os.replace(ckpt_path + ".tmp", ckpt_path)

    # ---- selection on val: best epoch (already), then the served resolution ----
    bk = torch.load(best_path, map_location="cpu")
    final = make_model(cfg)
    final.load_state_dict(bk["ema"])
    final.eval()
    log(f"selected epoch {bk['epoch']} (val_macro {bk['val_macro']:.4f} on cached val)")
    sizes = [int(s) for s in a.eval_sizes.split(",")]
    val_by_size = {}
    for s in sizes:
        logits = predict_reference(final, a.data, va_items, s, s, "cpu", workers)
        val_by_size[s] = macro_acc(confusion(logits.argmax(1), [c for _, c in va_items]))
        log(f"val (reference preprocessing) at {s}px: macro {val_by_size[s]:.4f}")
    size = max(sizes, key=lambda s: (val_by_size[s], -s))
    log(f"served resolution: {size}px")

    # ---- the one look at test ----
    logits = predict_reference(final, a.data, te_items, size, size, "cpu", workers)
    yte = [c for _, c in te_items]
    cm = confusion(logits.argmax(1), yte)
    test_macro = macro_acc(cm)
    log(f"TEST macro accuracy {test_macro:.4f} at {size}px; confusion (rows=true {LABELS}):\n{cm}")
    # Parity set: first images of each class by name, plus a few the model gets wrong.
    probs = torch.softmax(logits, 1)
    parity_idx = []
    for ci in range(3):
        parity_idx += [i for i, (_, c) in enumerate(te_items) if c == ci][:a.parity_per_class]
    wrong = [i for i in range(len(te_items)) if int(logits[i].argmax()) != yte[i]]
    parity_idx += wrong[:2]

    macs = count_macs(final, size)
    metrics = dict(
        name=a.name, version=a.version, git=git_rev(), cfg={k: list(v) for k, v in cfg.items()},
        params=sum(p.numel() for p in final.parameters()), macs=macs, flops=2 * macs, size=size,
        epochs=a.epochs, selected_epoch=bk["epoch"], val_by_size=val_by_size, test_macro=test_macro,
        test_per_class=[float(cm[i, i] / max(cm[i].sum(), 1)) for i in range(3)],
        test_confusion=cm.tolist(), test_n=len(te_items), train_n=len(xtr), val_n=len(xva),
        train_minutes=train_seconds / 60, hardware=hw, threads=torch.get_num_threads(), device=str(device),
        precision="float32" if amp is contextlib.nullcontext else "bfloat16 autocast",
        torch=torch.__version__, args=vars(a), history=history,
    )
    with open(os.path.join(a.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=1)
    if not a.export:
        return
    os.makedirs(a.export, exist_ok=True)
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
        "test_macro_accuracy": f"{test_macro:.4f}", "trained_by": "model/training/train.py",
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
    with open(os.path.join(a.export, "metrics.json"), "w") as f:
        json.dump({k: v for k, v in metrics.items() if k != "history"} | {"history": history}, f, indent=1)
    import card  # imported late so a card fix applies on a resumed run

    card.write(os.path.join(a.export, "MODEL.md"), metrics)
    log(f"exported {onnx_path} ({metrics['onnx_bytes'] / 1e6:.1f} MB), parity.json, MODEL.md")


if __name__ == "__main__":
    main()
