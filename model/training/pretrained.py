"""The ImageNet-pretrained backbone: torchvision's int8 MobileNetV2 turned back into floats.

The only pretrained ImageNet weights reachable here are torchvision's quantized
MobileNetV2 as a TorchScript file (../shared/pretrained/mobilenet_v2/SOURCES.md).
`float_mobilenet_v2` reads its 52 convolutions and its linear layer and writes
them, dequantized, into a stock `torchvision.models.mobilenet_v2()` that loads
with strict=True:

- Batch-norm was folded into each convolution when the model was quantized. The
  float copy keeps torchvision's BatchNorm2d layers but makes them pass values
  through (scale 1, running mean 0, running variance 1 - eps so that
  sqrt(var + eps) is exactly 1) and carries the folded bias as the batch-norm's
  bias. Fine-tuning keeps these statistics frozen (see net.py), so the layers
  stay affine and fold back into the convolutions when exported to ONNX.
- The quantized model clamps each activation to its uint8 range where the float
  one has ReLU6; the float copy keeps ReLU6.

    /usr/bin/python3 model/training/pretrained.py --data ../shared/datasets/pets --out report.json

checks the file's sha256 and proves the conversion two ways, on the `test/` images:
- op by op: every int8 convolution, fed the same input, gives its float twin's
  output within one quantization step (values it clips aside);
- end to end: the float copy and the int8 model agree on Cat/Dog/Other (the
  ImageNet top-1 grouped as SOURCES.md does) on >= 95 % of the images.
Their ImageNet top-1 itself agrees less often (0.85 here): the int8 model's
activation rounding, about half a step per op over 62 ops, flips near ties between
look-alike classes (tabby / tiger cat / Egyptian cat); the int8 top-1 is within
the float copy's top 5 on 99.7 % of the images. The report records all three.
"""

import argparse
import hashlib
import json
import os
import re
import sys
import time

import numpy as np
import torch
import torchvision

import preprocess as pp

SHA256 = "2778381c5eb7639a2229bc39567cf644226e5aa3d3a1d46dfcee70b373738498"
MIN_AGREEMENT = 0.95  # Cat/Dog/Other grouping of the top-1
MAX_OP_ERROR = 1.0  # quantization steps
# The input the ImageNet model was trained at; its normalisation is pp.MEAN / pp.STD.
IMAGENET_SIZE = 224


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_quantized(path):
    """The TorchScript int8 model, after checking it is the file SOURCES.md describes."""
    got = sha256(path)
    if got != SHA256:
        raise SystemExit(f"{path}: sha256 {got}, expected {SHA256} (see ../shared/pretrained/mobilenet_v2/SOURCES.md)")
    # This PyTorch build has qnnpack and onednn, not fbgemm.
    torch.backends.quantized.engine = "qnnpack"
    return torch.jit.load(path, map_location="cpu")


def _bn_of(conv_key):
    """torchvision puts each convolution's batch-norm right after it: a.b.K -> a.b.(K+1)."""
    parent, idx = conv_key.rsplit(".", 1)
    return f"{parent}.{int(idx) + 1}"


def float_state_dict(qmodel):
    """A state dict for torchvision.models.mobilenet_v2() holding the dequantized weights."""
    ref = torchvision.models.mobilenet_v2().state_dict()
    sd = {}
    names = re.findall(r'getattr\(self, "(_jit_pass_hoist_conv_packed_params\.[^"]+)"\)', qmodel.code)
    for name in names:
        key = re.match(r"_jit_pass_hoist_conv_packed_params\.(.+)\._packed_params\.\d+$", name).group(1)
        w, b = torch.ops.quantized.conv2d_unpack(qmodel._c.getattr(name))
        bn = _bn_of(key)
        sd[f"{key}.weight"] = w.dequantize()
        eps = 1e-5  # torchvision's BatchNorm2d default
        n = w.shape[0]
        sd[f"{bn}.weight"] = torch.ones(n)
        sd[f"{bn}.bias"] = b.detach().float() if b is not None else torch.zeros(n)
        sd[f"{bn}.running_mean"] = torch.zeros(n)
        sd[f"{bn}.running_var"] = torch.full((n,), 1.0 - eps)
        sd[f"{bn}.num_batches_tracked"] = torch.tensor(0)
    lin = getattr(qmodel.classifier, "1")._packed_params._packed_params
    w, b = torch.ops.quantized.linear_unpack(lin)
    sd["classifier.1.weight"] = w.dequantize()
    sd["classifier.1.bias"] = b.detach().float()
    missing = set(ref) - set(sd)
    if missing or len(names) != 52:
        raise SystemExit(f"unexpected model layout: {len(names)} convolutions, missing {sorted(missing)[:5]}")
    for k, v in sd.items():
        if v.shape != ref[k].shape:
            raise SystemExit(f"{k}: shape {tuple(v.shape)}, torchvision expects {tuple(ref[k].shape)}")
    return sd


def float_mobilenet_v2(path):
    """torchvision's MobileNetV2 (1000 ImageNet classes) with the pretrained weights, float32."""
    m = torchvision.models.mobilenet_v2()
    m.load_state_dict(float_state_dict(load_quantized(path)), strict=True)
    return m.eval()


def _group(top1):
    """ImageNet class -> 0 Cat, 1 Dog, 2 Other (the mapping SOURCES.md measured with)."""
    return torch.where((top1 >= 281) & (top1 <= 285), 0, torch.where((top1 >= 151) & (top1 <= 268), 1, 2))


def op_by_op(qmodel, x):
    """Replays the int8 graph op by op and runs each op's float twin on the same (dequantized)
    input. Returns the largest error of any op in units of that op's output quantization step,
    ignoring values the int8 op clips: a wrong weight, bias, stride or group shows up as tens
    of steps, an exact conversion as at most about one."""
    packed, q, worst = {}, {}, 0.0
    for ln in qmodel.code.split("\n"):
        ln = ln.strip()
        if m := re.match(r'(\w+) = getattr\(self, "([^"]+)"\)', ln):
            packed[m.group(1)] = qmodel._c.getattr(m.group(2))
        elif m := re.match(r"input = torch\.quantize_per_tensor\(X, ([0-9.e-]+), (\d+), 13\)", ln):
            q["input"] = torch.quantize_per_tensor(x, float(m.group(1)), int(m.group(2)), torch.quint8)
        elif m := re.match(r"(\w+) = ops\.quantized\.(conv2d_relu|conv2d)\((\w+), (\w+), ([0-9.e-]+), (\d+)\)", ln):
            out, op, inp, pv, s, z = m.groups()
            p = packed[pv]
            q[out] = getattr(torch.ops.quantized, op)(q[inp], p, float(s), int(z))
            w, b = torch.ops.quantized.conv2d_unpack(p)
            ref = torch.nn.functional.conv2d(q[inp].dequantize(), w.dequantize(), b,
                                             torch.ops.quantized.conv2d_stride(p), torch.ops.quantized.conv2d_padding(p),
                                             torch.ops.quantized.conv2d_dilation(p), torch.ops.quantized.conv2d_groups(p))
            ref = torch.relu(ref) if op == "conv2d_relu" else ref
            lo, hi = (0 - int(z)) * float(s), (255 - int(z)) * float(s)
            inside = (ref > lo) & (ref < hi)
            err = (q[out].dequantize() - ref).abs()[inside].max() / float(s)
            worst = max(worst, float(err))
        elif m := re.match(r"(\w+) = ops\.quantized\.add\((\w+), (\w+), ([0-9.e-]+), (\d+)\)", ln):
            out, a, b, s, z = m.groups()
            q[out] = torch.ops.quantized.add(q[a], q[b], float(s), int(z))
    return worst


def agreement(path, root, split="test", limit=0):
    """How closely the float copy follows the int8 model on the `split` images: op by op
    (on the first image), ImageNet top-1, the int8 top-1 within the float top-5, and the
    Cat/Dog/Other grouping of the top-1."""
    q = load_quantized(path)
    f = float_mobilenet_v2(path)
    files = []
    for c in sorted(os.listdir(os.path.join(root, split))):
        names = sorted(os.listdir(os.path.join(root, split, c)))
        files += [os.path.join(root, split, c, n) for n in (names[:limit] if limit else names)]
    same = top5 = grouped = 0
    worst_op, t0 = None, time.time()
    with torch.no_grad():
        for i in range(0, len(files), 64):
            xb = torch.from_numpy(np.stack([pp.reference_input(p, IMAGENET_SIZE, IMAGENET_SIZE)
                                            for p in files[i:i + 64]]))
            if worst_op is None:
                worst_op = op_by_op(q, xb[:1])
            lf = f(xb)
            top_q = torch.stack([q(xb[j:j + 1])[0].argmax() for j in range(len(xb))])  # traced at batch 1
            top_f = lf.argmax(1)
            same += int((top_f == top_q).sum())
            top5 += int((lf.topk(5, 1).indices == top_q[:, None]).any(1).sum())
            grouped += int((_group(top_f) == _group(top_q)).sum())
    n = max(1, len(files))
    return dict(file=os.path.basename(path), sha256=SHA256, split=split, images=len(files), same_top1=same,
                agreement=same / n, int8_top1_in_float_top5=top5 / n, grouped_agreement=grouped / n,
                worst_op_error_steps=round(worst_op or 0.0, 3), seconds=round(time.time() - t0, 1),
                batchnorm="folded into each convolution by the int8 export; kept as pass-through BatchNorm2d "
                          "(scale 1, mean 0, var 1-eps) carrying the folded bias, statistics frozen in training",
                relu6="the int8 model clamps each activation to its uint8 range; the float copy keeps ReLU6 "
                      "(trained as clamp(0, 6), exported as Clip)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pretrained", default="../shared/pretrained/mobilenet_v2/mobilenet_v2_quantized.pt")
    ap.add_argument("--data", default="../shared/datasets/pets")
    ap.add_argument("--limit", type=int, default=0, help="images per class (quick checks)")
    ap.add_argument("--out", default="", help="write the report as JSON here")
    a = ap.parse_args()
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    r = agreement(a.pretrained, a.data, limit=a.limit)
    print(f"op by op, the float copy is within {r['worst_op_error_steps']} quantization steps of the int8 model; "
          f"ImageNet top-1 agrees on {r['same_top1']}/{r['images']} "
          f"{r['split']}/ images ({r['agreement']:.4f}), within its top-5 on {r['int8_top1_in_float_top5']:.4f}, "
          f"as Cat/Dog/Other on {r['grouped_agreement']:.4f} ({r['seconds']} s)", flush=True)
    if a.out:
        with open(a.out, "w") as fh:
            json.dump(r, fh, indent=1)
    if r["worst_op_error_steps"] > MAX_OP_ERROR or r["grouped_agreement"] < MIN_AGREEMENT:
        sys.exit(f"conversion rejected: worst op {r['worst_op_error_steps']} steps (max {MAX_OP_ERROR}), "
                 f"Cat/Dog/Other agreement {r['grouped_agreement']:.4f} (min {MIN_AGREEMENT})")


if __name__ == "__main__":
    main()
