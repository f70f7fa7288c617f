"""Write resources/MODEL.md from the metrics of a finished training run.

Every number in the card comes from metrics.json of the run that produced the
ONNX file; nothing here is typed by hand.
"""

LABELS = ("Cat", "Dog", "Other")


def _curve(history, every=5):
    rows = ["| epoch | train size | train loss | train acc | val macro acc (EMA, cached val) | lr |",
            "|---:|---:|---:|---:|---:|---:|"]
    for h in history:
        if h["epoch"] % every == 0 or h["epoch"] in (1, len(history)):
            rows.append(f"| {h['epoch']} | {h.get('size', '')} | {h['loss']:.4f} | {h['train_acc']:.4f} "
                        f"| {h['val_macro']:.4f} | {h['lr']:.4f} |")
    return "\n".join(rows)


def _stints(stints):
    rows = ["| stint | epochs | minutes | hardware | device |", "|---:|---|---:|---|---|"]
    for s in stints:
        rows.append(f"| {s['stint']} | {s['start_epoch']} → {s['end_epoch']} | {s['minutes']:.0f} "
                    f"| {s['hardware']} | `{s['device']}` |")
    return "\n".join(rows)


def _sources(groups):
    rows = ["| source (class) | images | accuracy |", "|---|---:|---:|"]
    for k, v in sorted(groups.items(), key=lambda kv: kv[1]["accuracy"]):
        rows.append(f"| {k} | {v['n']} | {v['accuracy']:.4f} |")
    return "\n".join(rows)


def _previous(m):
    p = m.get("previous")
    if not p:
        return ""
    rows = [f"| | v{p['version']} (previous default) | v{m['version']} (this model) |", "|---|---:|---:|",
            f"| macro accuracy on `test/` | {p['test_macro']:.4f} | {m['test_macro']:.4f} |"]
    for i, lab in enumerate(LABELS):
        rows.append(f"| {lab} accuracy | {p['test_per_class'][i]:.4f} | {m['test_per_class'][i]:.4f} |")
    rows += [f"| served resolution | {p['size']}px | {m['size']}px |",
             f"| parameters | {p['params'] / 1e6:.2f} M | {m['params'] / 1e6:.2f} M |",
             f"| GFLOPs per image | {p['flops'] / 1e9:.2f} | {m['flops'] / 1e9:.2f} |",
             f"| training | {p['epochs']} epochs, {p['train_minutes']:.0f} min, {p.get('precision', '?')} "
             f"| {m['epochs']} epochs, {m['train_minutes']:.0f} min, {m.get('precision', '?')} |"]
    return "## Compared with the previous default\n\n" + "\n".join(rows) + "\n\n"


def _architecture(m):
    if m.get("arch") != "mobilenet_v2":
        return f"""A narrow ResNet trained from scratch: stem of two 3x3 convolutions (stride 2), then
stages of basic residual blocks with widths {m['cfg']['widths'][1:]} and {m['cfg']['blocks']} blocks,
each stage halving the resolution (average-pool + 1x1 projection shortcuts),
global average pooling, dropout 0.2, and a linear layer to 3 **logits**.
Fully convolutional, so the served resolution is a free choice (made on
`val/`, below)."""
    b = m.get("backbone") or {}
    conv = ""
    if b:
        conv = f"""
### The pretrained backbone and its conversion

- **Provenance.** torchvision's ImageNet-1k MobileNetV2, as published in int8 by
  `pytorch/ios-demo-app` (file `{b['file']}`, sha256 `{b['sha256']}`, checked before use;
  see `../shared/pretrained/mobilenet_v2/SOURCES.md`). **Licences:** the weights and
  torchvision are BSD-licensed; the weights were trained on ImageNet-1k, whose images
  are licensed for non-commercial research and education only. Anyone serving this
  model should judge whether ImageNet's terms reach a model fine-tuned from it.
- **Conversion** (`model/training/pretrained.py`): the 52 int8 convolutions and the
  linear layer are dequantized into a stock `torchvision.models.mobilenet_v2()`
  (loads with `strict=True`). Batch-norm: {b['batchnorm']}. ReLU6: {b['relu6']}.
- **Proof, on the {b['images']} images of `{b['split']}/`:** op by op, every int8
  convolution fed the same input is matched by its float twin within
  **{b['worst_op_error_steps']}** quantization steps (a wrong weight, bias, stride or group
  would show tens). End to end, the float copy and the int8 model give the same
  Cat/Dog/Other grouping of the ImageNet top-1 (classes 151-268 Dog, 281-285 Cat) on
  **{b['grouped_agreement']:.4f}**, the int8 top-1 is within the float top-5 on
  {b['int8_top1_in_float_top5']:.4f}, and the ImageNet top-1 itself agrees on
  {b['agreement']:.4f}: the int8 model's activation rounding (about half a step per op,
  over 62 ops) flips near ties between look-alike ImageNet classes such as tabby,
  tiger cat and Egyptian cat, so no faithful conversion reaches 0.95 there; the
  conversion is accepted on the op-by-op bound (1 step) and the grouping (0.95).
"""
    a = m["args"]
    return f"""MobileNetV2 (torchvision layout, {m['params'] / 1e6:.2f} M parameters) with its
ImageNet-pretrained feature extractor and a new head: global average pooling,
dropout 0.2, a linear layer to 3 logits. Fine-tuned: the first
{a['freeze_blocks']} of its 19 feature blocks (stem and the high-resolution stages) stay
frozen, the rest adapt. The exported graph divides the logits by the temperature
fitted on `val/` (below), so a plain softmax of its output is calibrated.
{conv}"""


def _training(m, a, cmd, val_sizes, size):
    if m.get("arch") != "mobilenet_v2":
        opt = (f"SGD, Nesterov momentum 0.9, batch {a['batch']}, peak learning rate {a['lr']} after 2 warm-up\n"
               f"  epochs; schedule `{a['schedule']}`")
    else:
        opt = (f"Epoch 1 trains the head alone (backbone frozen: a linear probe of the ImageNet\n"
               f"  features); from epoch {a['freeze_epochs'] + 1} the backbone past block {a['freeze_blocks']} "
               f"trains too, at {a['backbone_lr']}x the head's rate.\n"
               f"  AdamW (the int8 export folded batch-norm into the convolutions, leaving layers with very\n"
               f"  different weight scales: SGD diverged on them at any useful rate, AdamW's per-weight steps\n"
               f"  do not), batch {a['batch']}, peak learning rate {a['lr']} after 2 warm-up epochs; schedule `{a['schedule']}`")
    return f"""`make train` reproduces this run from the dataset and the pretrained file; it runs,
with these values as the defaults:

```
{cmd}
```

- Pipeline: `train/` decoded once into a uint8 cache (centre {a['cache_size']}x{a['cache_size']});
  per batch, random-resized crops (25-100 % of the area, aspect 3/4-4/3), horizontal flips,
  brightness/contrast/saturation jitter (±35 %, ±35 %, ±40 %), 5 % greyscale and
  RandomErasing (p={a['erase']}), all on tensors; CutMix or MixUp on a {a['mix']} share of
  the batches. Progressive resizing: the crop size follows `{a['size_plan']}`
  (SIZE@FRACTION-OF-RUN).
- {opt} (`wsd`: constant, then cosine to 0 over the last {a['cooldown']:.0%} of the epochs),
  weight decay {a['wd']} (not on norms/biases), label smoothing {a['smoothing']},
  class-balanced loss weights, {a['epochs']} epochs; an exponential moving average of the
  weights (decay {a['ema']}) is what gets evaluated and exported. bfloat16 autocast on CUDA
  and on CPUs with AVX-512 BF16, float32 otherwise. Seed {a['seed']}.
- Selection on `val/`: best epoch by EMA macro accuracy (epoch {m['selected_epoch']} of {m['epochs']}),
  then the served resolution through the exact serving preprocessing
  ({val_sizes}) → **{size}px**.
- Hardware: {m['hardware']}, {m['threads']} threads, device `{m['device']}`, torch {m['torch']},
  {m.get('precision', 'float32')}.
  Training wall time {m['train_minutes']:.0f} min in {len(m.get('stints', []))} stint(s)
  (each resumes the last per-epoch checkpoint exactly):

{_stints(m.get('stints', []))}

Learning curve:

{_curve(m['history'], every=1 if len(m['history']) <= 20 else 5)}
"""


def _calibration(m):
    e = m.get("test_ece")
    if not e:
        return ""
    calibrated = (" A confidence of 0.9 from this model is right about nine times in ten on\nphotos like"
                  " these; on photos unlike the training sources it means less.") if e["after"] <= 0.03 else ""
    return f"""## Calibration

A temperature T = **{m['temperature']:.3f}** was fitted on `val/` (minimum negative
log-likelihood of softmax(logits / T)) and is part of the exported graph. Expected
calibration error on `test/` ({e['bins']} equal-width confidence bins): **{e['before']:.4f}**
before, **{e['after']:.4f}** after.{calibrated}

"""


def _people(m):
    p = m.get("people_test")
    if not p:
        return ""
    return f"""## People

`../shared/datasets/people/` (photos of people, all `other`; see its SOURCES.md) is part
of `train/` and `val/` here, and its `test/` is reported on its own, outside the
`test/` figure above: **{p['other']}/{p['n']} = {p['accuracy']:.4f}** called Other
(predicted Cat / Dog / Other: {' / '.join(map(str, p['predicted']))}). Only 4 of those
{p['n']} are close-up faces; the rest are full-body street photos.

"""


def _inference(m):
    inf = m.get("inference")
    if not inf:
        return ""
    rows = ["| model | input | ms per image (median) | runs |", "|---|---:|---:|---:|"]
    for r in inf["rows"]:
        rows.append(f"| {r['model']} | {r['input']} | {r['ms']:.2f} | {r['runs']} |")
    return f"""## Inference time

One image, one ONNX Runtime thread, the service's own session (`BenchmarkInference` in
`model/bench_test.go`, run by `{inf['command']}` on {inf['cpu']}, {inf['date']}; median of
{inf['repeats']} runs, both models in the same run):

""" + "\n".join(rows) + "\n\n"


def _quantization(m):
    q = m.get("quantization")
    if not q:
        return ""
    rows = ["| model | file | val macro | val Cat / Dog / Other | test macro | test Cat / Dog / Other | ms per image | ratio |",
            "|---|---|---:|---:|---:|---:|---:|---:|"]
    for e in q.values():
        for prec in ("fp32", "int8"):
            acc = e["accuracy"][prec]
            f = f"`{e[prec + '_file']}`" if e.get(f"{prec}_file") else "not shipped"
            rows.append(f"| {e['model']} {prec} | {f} | {acc['val']['macro']:.4f} | "
                        + " / ".join(f"{v:.4f}" for v in acc["val"]["per_class"])
                        + f" | {acc['test']['macro']:.4f} | " + " / ".join(f"{v:.4f}" for v in acc["test"]["per_class"])
                        + f" | {e['inference_ms'][prec]:.2f} | {e['inference_ms'][prec] / e['inference_ms']['fp32']:.2f} |")
    last = list(q.values())[0]
    return f"""## int8

`make quantize` (`model/training/quantize.py`, `tools/calibrate`, `tools/evaluate`) makes a
static int8 copy of a model: activations uint8 per tensor, ranges measured by ONNX Runtime
on train photos preprocessed by the service's own code ({last['calibration']}); Conv
weights int8 per output channel; pooling, classifier and temperature float. Accuracy is
measured through the Go serving path; inference time as above (one thread, median of
{len(last['inference_runs']['fp32'])} interleaved runs, {last['cpu']}, {last['date']}). The service
serves the int8 file by default only when its `val/` macro accuracy is within 0.3 points of
fp32's and every class within 0.5, and a start-up benchmark finds it faster on the CPU it
runs on (docs/MODELS.md, "int8"). `val/` includes the people photos for every model (v3
was trained without them: its Other is lower there); `test/` is the card's, people apart.

""" + "\n".join(rows) + "\n\n"


def write(path, m):
    a = m["args"]
    cm = m["test_confusion"]
    per = m["test_per_class"]
    size = m["size"]
    skip = {"data", "out", "export", "limit", "threads", "workers", "stint_minutes", "parity_per_class", "device", "bf16"}
    flags = [f"--{k.replace('_', '-')} {v}" for k, v in a.items() if k not in skip and v not in (None, "")]
    cmd = f"/usr/bin/python3 model/training/train.py --data {a['data']} --export {a['export']} \\\n  " + \
        " \\\n  ".join(" ".join(flags[i:i + 4]) for i in range(0, len(flags), 4))
    # The most frequent confusion, read from the matrix rather than assumed.
    worst = max(((cm[i][j], i, j) for i in range(3) for j in range(3) if i != j))
    errors = sum(cm[i][j] for i in range(3) for j in range(3) if i != j)
    cm_rows = "\n".join(f"| **{LABELS[i]}** | " + " | ".join(str(v) for v in cm[i]) + f" | {per[i]:.4f} |"
                        for i in range(3))
    val_sizes = ", ".join(f"{s}px: {v:.4f}" for s, v in sorted(m["val_by_size"].items(), key=lambda kv: int(kv[0])))
    pretrained = m.get("arch") == "mobilenet_v2" and m.get("backbone")
    what = ("an ImageNet-pretrained MobileNetV2 **fine-tuned** on `../shared/datasets/pets/` plus\n"
            "photos of people as Other (`../shared/datasets/people/`)") if pretrained else \
        "a small residual CNN trained **from scratch** (no\npretrained weights of any kind) on `../shared/datasets/pets/`"
    data = f"`../shared/datasets/pets/` ({m['train_n']} train / {m['val_n']} val / {m['test_n']} test images"
    if m.get("people_test"):
        data += ", people included in train and val"
    text = f"""# Model card: {m['name']} v{m['version']}

The default model of catsdogs: {what}, classifying an image as **Cat**, **Dog** or
**Other**. Produced by `make train` (`model/training/train.py`, git `{m['git']}`); every
number below is copied from that run's `metrics.json` by `model/training/card.py`.

## Result

| | |
|---|---|
| **macro accuracy on `test/`** (mean of per-class accuracies) | **{m['test_macro']:.4f}** |
| per-class accuracy: Cat / Dog / Other | {per[0]:.4f} / {per[1]:.4f} / {per[2]:.4f} |
| test images | {m['test_n']} |
| file | `resources/{m['onnx_file']}`, {m['onnx_bytes'] / 1e6:.1f} MB |
| parameters | {m['params'] / 1e6:.2f} M |
| compute per image at {size}x{size} | {m['macs'] / 1e6:.0f} M multiply-adds = {m['flops'] / 1e9:.2f} GFLOPs |

Confusion matrix on `test/` (rows: true class, columns: predicted):

| true \\ predicted | Cat | Dog | Other | accuracy |
|---|---:|---:|---:|---:|
{cm_rows}

`test/` was evaluated once, after every choice below had been made on `val/`.

{_calibration(m)}{_people(m)}{_inference(m)}{_quantization(m)}## Architecture

{_architecture(m)}
## Input and output (also stored in the ONNX `metadata_props`)

| key | value |
|---|---|
""" + "\n".join(f"| `{k}` | `{v}` |" for k, v in m["metadata"].items()) + f"""

In words: decode, apply EXIF orientation, composite transparency on white,
convert to RGB; resize (Pillow `BILINEAR`, i.e. antialiased triangle filter) so
the shorter side is {size} px; centre-crop {size}x{size}; scale to [0, 1];
subtract the ImageNet mean and divide by the std per RGB channel; NCHW float32
with a dynamic batch axis. The output is logits in label order; the server
applies softmax. The Go server reads these keys and reproduces the steps
bit-exactly (checked against `resources/parity.json` in CI).

## Data

{data}; sources, licences and the split procedure are in the datasets' SOURCES.md).
Images there are already resized to a 160 px shorter side. Training reads `train/`
only, model selection and calibration read `val/` only.

## Training

{_training(m, a, cmd, val_sizes, size)}
{_previous(m)}## Where it is weak: accuracy per source of `test/`

Images of `test/` grouped by the repository they came from (`manifest.csv`),
weakest first. Sources with few images say little; the spread says which kinds
of photo the model has not learnt well.

{_sources(m.get('test_by_source', {}))}

## Known weaknesses

- The most frequent error on `test/` is **{LABELS[worst[1]]} predicted as {LABELS[worst[2]]}**
  ({worst[0]} of {errors} errors; see the matrix).
- It has only seen the sources listed in the datasets' SOURCES.md. Expect lower
  accuracy on what they lack: cartoons and drawings, several animals in one picture,
  extreme crops and very dark photos. The test figure is in-distribution accuracy
  (same sources as training).
- Input is a centre crop: a pet at the edge of a wide panorama may be cut off.
- "Other" means "not a cat or dog" only in the sense of the training data.
"""
    with open(path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    # Rewrites a card from a metrics.json: python3 card.py resources/metrics.json resources/MODEL.md
    import json
    import sys

    with open(sys.argv[1]) as fh:
        write(sys.argv[2], json.load(fh))
