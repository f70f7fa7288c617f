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


def write(path, m):
    a = m["args"]
    cm = m["test_confusion"]
    per = m["test_per_class"]
    size = m["size"]
    cmd = (f"/usr/bin/python3 model/training/train.py --data {a['data']} --export {a['export']} \\\n"
           f"  --epochs {a['epochs']} --batch {a['batch']} --lr {a['lr']} --schedule {a['schedule']}"
           f" --cooldown {a['cooldown']} --wd {a['wd']} --smoothing {a['smoothing']} --ema {a['ema']} \\\n"
           f"  --size-plan {a['size_plan']} --mix {a['mix']} --erase {a['erase']} --cache-size {a['cache_size']} \\\n"
           f"  --eval-sizes {a['eval_sizes']} --widths {a['widths']} --blocks {a['blocks']} --seed {a['seed']}")
    # The most frequent confusion, read from the matrix rather than assumed.
    worst = max(((cm[i][j], i, j) for i in range(3) for j in range(3) if i != j))
    errors = sum(cm[i][j] for i in range(3) for j in range(3) if i != j)
    cm_rows = "\n".join(f"| **{LABELS[i]}** | " + " | ".join(str(v) for v in cm[i]) + f" | {per[i]:.4f} |"
                        for i in range(3))
    val_sizes = ", ".join(f"{s}px: {v:.4f}" for s, v in sorted(m["val_by_size"].items(), key=lambda kv: int(kv[0])))
    text = f"""# Model card: {m['name']} v{m['version']}

The default model of catsdogs: a small residual CNN trained **from scratch** (no
pretrained weights of any kind) on `../shared/datasets/pets/`, classifying an
image as **Cat**, **Dog** or **Other**. Produced by `make train`
(`model/training/train.py`, git `{m['git']}`); every number below is copied from
that run's `metrics.json` by `model/training/card.py`.

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

## Architecture

A narrow ResNet: stem of two 3x3 convolutions (stride 2), then stages of basic
residual blocks with widths {m['cfg']['widths'][1:]} and {m['cfg']['blocks']} blocks,
each stage halving the resolution (average-pool + 1x1 projection shortcuts),
global average pooling, dropout 0.2, and a linear layer to 3 **logits**.
Fully convolutional, so the served resolution is a free choice (made on
`val/`, below).

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

`../shared/datasets/pets/` ({m['train_n']} train / {m['val_n']} val / {m['test_n']} test images;
sources, licences and the split procedure are in
`../shared/datasets/pets/SOURCES.md`). Images there are already resized to a
160 px shorter side. Training reads `train/` only, model selection reads
`val/` only.

## Training

`make train` reproduces this run from scratch; it runs, with these values as the defaults:

```
{cmd}
```

- Pipeline: `train/` decoded once into a uint8 cache (centre {a['cache_size']}x{a['cache_size']});
  per batch, random-resized crops (25-100 % of the area, aspect 3/4-4/3), horizontal flips,
  brightness/contrast/saturation jitter (±35 %, ±35 %, ±40 %), 5 % greyscale and
  RandomErasing (p={a['erase']}), all on tensors; CutMix or MixUp on a {a['mix']} share of
  the batches. Progressive resizing: the crop size follows `{a['size_plan']}`
  (SIZE@FRACTION-OF-RUN), small early, near the served size at the end.
- SGD, Nesterov momentum 0.9, batch {a['batch']}, peak learning rate {a['lr']} after 2 warm-up
  epochs; schedule `{a['schedule']}` (`wsd`: constant, then cosine to 0 over the last
  {a['cooldown']:.0%} of the epochs), weight decay {a['wd']} (not on norms/biases),
  label smoothing {a['smoothing']}, class-balanced loss weights, {a['epochs']} epochs;
  an exponential moving average of the weights (decay {a['ema']}) is what gets evaluated
  and exported. bfloat16 autocast on CUDA and on CPUs with AVX-512 BF16, float32
  otherwise. Seed {a['seed']}.
- Selection on `val/`: best epoch by EMA macro accuracy (epoch {m['selected_epoch']} of {m['epochs']}),
  then the served resolution through the exact serving preprocessing
  ({val_sizes}) → **{size}px**.
- Hardware: {m['hardware']}, {m['threads']} threads, device `{m['device']}`, torch {m['torch']},
  {m.get('precision', 'float32')}.
  Training wall time {m['train_minutes']:.0f} min in {len(m.get('stints', []))} stint(s)
  (each resumes the last per-epoch checkpoint exactly):

{_stints(m.get('stints', []))}

Learning curve:

{_curve(m['history'])}

{_previous(m)}## Where it is weak: accuracy per source of `test/`

Images of `test/` grouped by the repository they came from (`manifest.csv`),
weakest first. Sources with few images say little; the spread says which kinds
of photo the model has not learnt well.

{_sources(m.get('test_by_source', {}))}

## Known weaknesses

- The most frequent error on `test/` is **{LABELS[worst[1]]} predicted as {LABELS[worst[2]]}**
  ({worst[0]} of {errors} errors; see the matrix).
- **Small, from-scratch model on a modest dataset.** It has only seen the
  sources listed in SOURCES.md. Expect lower accuracy on what they lack:
  studio or professional pet photography, unusual breeds, cartoons and
  drawings, several animals in one picture, animals that are neither cats nor
  dogs (foxes, rabbits, big cats), extreme crops and very dark photos. The
  test figure is in-distribution accuracy (same sources as training).
- Input is a centre crop: a pet at the edge of a wide panorama may be cut off.
- "Other" means "not a cat or dog" only in the sense of the training data;
  the probabilities are not calibrated for out-of-distribution inputs.
"""
    with open(path, "w") as f:
        f.write(text)
