"""Static int8 quantization of an exported classifier, in ONNX's QDQ form.

    /usr/bin/python3 model/training/quantize.py probe --model M.onnx --out build/quant/probe.onnx
    go run ./tools/calibrate --probe build/quant/probe.onnx --out build/quant/ranges.json ...
    /usr/bin/python3 model/training/quantize.py build --model M.onnx --ranges build/quant/ranges.json --out M-int8.onnx

`make quantize` runs the three steps and then measures the result through the Go
serving path. Why this shape: PyPI (and so onnxruntime's own quantization tool) is out
of reach here, Debian's `onnx` package is; activation ranges are measured by ONNX
Runtime itself on images preprocessed by the service's own Go code (tools/calibrate),
so calibration sees exactly what serving feeds the model.

What is quantized (ONNX Runtime fuses each DequantizeLinear -> op -> QuantizeLinear
group into an int8 kernel: QLinearConv, QLinearAdd):
- activations: the model input and the output of every Conv, residual Add and pooling
  window (AveragePool, MaxPool), as uint8 with a per-tensor scale and zero point
  (asymmetric);
- Conv weights: int8, symmetric, one scale per output channel; biases int32 at scale
  input_scale x weight_scale, as ONNX Runtime's kernels expect;
- a Clip (ReLU6) or Relu after one of these is folded into its output's quantization:
  the range starts at 0 and stops at most at the Clip's max, so QuantizeLinear's
  saturation does what the activation did;
- the pooling, the classifier (Gemm, 1280x3) and the temperature stay float: they
  cost little and carry the calibration the card states.
"""

import argparse
import datetime
import hashlib
import json
import os
import statistics

import numpy as np
import onnx
from onnx import helper, numpy_helper

import card
from card_bench import bench_once
from train import cpu_name


def producers(g):
    return {o: n for n in g.node for o in n.output}


def consumers(g):
    c = {}
    for n in g.node:
        for i in n.input:
            c.setdefault(i, []).append(n)
    return c


def constant_value(g, name):
    """The value of an initializer or a Constant node's output, else None."""
    for t in g.initializer:
        if t.name == name:
            return numpy_helper.to_array(t)
    for n in g.node:
        if n.op_type == "Constant" and n.output[0] == name:
            return numpy_helper.to_array(n.attribute[0].t)
    return None


# Ops whose float output is quantized (ONNX Runtime has int8 kernels for each),
# and the bounded activations folded into the quantization of what they follow.
QUANTIZED = ("Conv", "Add", "AveragePool", "MaxPool")
BOUNDED = ("Clip", "Relu")


def _bounds(g, act):
    """The [lo, hi] an activation node clamps to."""
    if act.op_type == "Relu":
        return 0.0, np.inf
    attrs = {a.name: helper.get_attribute_value(a) for a in act.attribute}  # opset < 11 keeps them here
    lo = constant_value(g, act.input[1]) if len(act.input) > 1 and act.input[1] else attrs.get("min")
    hi = constant_value(g, act.input[2]) if len(act.input) > 2 and act.input[2] else attrs.get("max")
    return (float(lo) if lo is not None else -np.inf, float(hi) if hi is not None else np.inf)


def activations(g):
    """The float tensors to quantize, each with how its range is bounded:
    {tensor: (lo, hi) or None}. An op followed only by a Clip or Relu is
    represented by its own output, bounded by the activation's limits."""
    cons = consumers(g)
    out = {g.input[0].name: None}
    for n in g.node:
        if n.op_type not in QUANTIZED or (n.op_type == "Add" and any(constant_value(g, i) is not None for i in n.input)):
            continue
        y = n.output[0]
        users = cons.get(y, [])
        out[y] = _bounds(g, users[0]) if len(users) == 1 and users[0].op_type in BOUNDED else None
    return out


def probe(a):
    """Copy the model with every tensor to calibrate added as an output (after the
    original ones, so the probe still reads as the same classifier)."""
    m = onnx.load(a.model)
    g = m.graph
    names = list(activations(g))
    have = {o.name for o in g.output}
    for name in names:
        if name not in have:
            g.output.append(helper.make_empty_tensor_value_info(name))
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    onnx.save(m, a.out)
    print(f"{a.out}: {len(names)} tensors to calibrate")


def uint8_params(lo, hi):
    """Scale and zero point of an asymmetric uint8 range that holds 0 exactly."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo < 1e-8:
        hi = lo + 1e-8
    scale = (hi - lo) / 255.0
    zp = int(np.clip(round(-lo / scale), 0, 255))
    return np.float32(scale), np.uint8(zp)


def build(a):
    m = onnx.load(a.model)
    g = m.graph
    with open(a.ranges) as f:
        ranges = json.load(f)["tensors"]
    acts = activations(g)
    prod = producers(g)
    cons = consumers(g)
    init = {t.name: t for t in g.initializer}
    new_nodes, new_inits = [], []
    qparams, dq_name, drop, alias = {}, {}, set(), {}

    for name, clip in acts.items():
        if name not in ranges:
            raise SystemExit(f"{a.ranges} has no range for {name}: rerun the calibration on this model")
        lo, hi = ranges[name]
        if clip is not None:
            lo, hi = max(lo, clip[0]), min(hi, clip[1])
        scale, zp = uint8_params(lo, hi)
        qparams[name] = (scale, zp)
        s, z = name + "_scale", name + "_zero_point"
        new_inits += [numpy_helper.from_array(np.array(scale, np.float32), s),
                      numpy_helper.from_array(np.array(zp, np.uint8), z)]
        q, dq = name + "_quantized", name + "_dequantized"
        node = [helper.make_node("QuantizeLinear", [name, s, z], [q], name=q),
                helper.make_node("DequantizeLinear", [q, s, z], [dq], name=dq)]
        new_nodes.append((name, node))
        dq_name[name] = dq
        if clip is not None and len(cons.get(name, [])) == 1 and cons[name][0].op_type in BOUNDED:
            # The activation's consumers read the dequantized output instead.
            c = cons[name][0]
            drop.add(id(c))
            dq_name[c.output[0]] = dq
            alias[c.output[0]] = name

    # Conv weights per output channel, biases at input scale x weight scale.
    for n in g.node:
        if n.op_type != "Conv":
            continue
        x = alias.get(n.input[0], n.input[0])
        if x not in qparams:
            raise SystemExit(f"Conv {n.name}: its input {x} is not a quantized activation")
        w = numpy_helper.to_array(init[n.input[1]]).astype(np.float32)
        wmax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
        ws = np.where(wmax > 0, wmax / 127.0, 1.0).astype(np.float32)
        wq = np.clip(np.round(w / ws.reshape(-1, *([1] * (w.ndim - 1)))), -127, 127).astype(np.int8)
        base = n.input[1]
        new_inits += [numpy_helper.from_array(wq, base + "_quantized"),
                      numpy_helper.from_array(ws, base + "_scale"),
                      numpy_helper.from_array(np.zeros_like(wq, shape=(len(ws),)), base + "_zero_point")]
        wdq = helper.make_node("DequantizeLinear", [base + "_quantized", base + "_scale", base + "_zero_point"],
                               [base + "_dequantized"], name=base + "_dequantized", axis=0)
        extra = [wdq]
        ins = [n.input[0], base + "_dequantized"]
        if len(n.input) > 2 and n.input[2]:
            b = numpy_helper.to_array(init[n.input[2]]).astype(np.float64)
            bs = (qparams[x][0].astype(np.float64) * ws.astype(np.float64))
            bq = np.round(b / bs).astype(np.int32)
            bb = n.input[2]
            new_inits += [numpy_helper.from_array(bq, bb + "_quantized"),
                          numpy_helper.from_array(bs.astype(np.float32), bb + "_scale"),
                          numpy_helper.from_array(np.zeros(len(bs), np.int32), bb + "_zero_point")]
            extra.append(helper.make_node("DequantizeLinear", [bb + "_quantized", bb + "_scale", bb + "_zero_point"],
                                          [bb + "_dequantized"], name=bb + "_dequantized", axis=0))
            ins.append(bb + "_dequantized")
        del n.input[:]
        n.input.extend(ins)
        new_nodes.append((None, extra, n))

    # Rebuild the node list in the original (topological) order: weight and
    # bias DequantizeLinear nodes just before their Conv, each Q/DQ pair just
    # after its producer, every reader of a quantized tensor (or of a folded
    # Clip's output) reading the dequantized copy.
    after = {t[0]: t[1] for t in new_nodes if t[0] is not None}
    before = {id(t[2]): t[1] for t in new_nodes if t[0] is None}
    out = list(after.get(g.input[0].name, []))
    for n in g.node:
        if id(n) in drop:
            continue
        out += before.get(id(n), [])
        for i, name in enumerate(n.input):
            n.input[i] = dq_name.get(name, name)
        out.append(n)
        for o in n.output:
            out += after.get(o, [])
    for o in g.output:
        if o.name in dq_name and o.name not in {x for n in out for x in n.output}:
            out.append(helper.make_node("Identity", [dq_name[o.name]], [o.name]))
    # The folded Clips' limits are Constant nodes nothing reads any more.
    used = {i for n in out for i in n.input} | {o.name for o in g.output}
    out = [n for n in out if n.op_type != "Constant" or n.output[0] in used]
    keep = [t for t in list(g.initializer) + new_inits if t.name in used]
    del g.node[:]
    g.node.extend(out)
    del g.initializer[:]
    g.initializer.extend(keep)
    onnx.checker.check_model(m)
    onnx.save(m, a.out)
    n_q = sum(1 for n in out if n.op_type == "QuantizeLinear")
    print(f"{a.out}: {n_q} activations quantized, {sum(1 for n in out if n.op_type == 'Conv')} convolutions "
          f"with int8 weights, {os.path.getsize(a.out) / 1e6:.1f} MB")


def _evals(folder):
    """tools/evaluate's answers, {precision: {split: result}}."""
    out = {}
    for prec in ("fp32", "int8"):
        for split in ("val", "test"):
            with open(os.path.join(folder, f"{prec}-{split}.json")) as f:
                out.setdefault(prec, {})[split] = json.load(f)
    return out


def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def record(a):
    """Stamp the measured accuracy into the int8 model's metadata (the service
    reads it to decide whether int8 may be served by default), time both models
    with the service's own benchmark, and add both to the card."""
    ev = _evals(a.evals)
    with open(a.ranges) as f:
        calib = json.load(f)
    labels = ev["fp32"]["val"]["labels"]  # the model's order (per_class is a JSON object)
    per = lambda prec, split: [ev[prec][split]["per_class"][k] for k in labels]
    m = onnx.load(a.int8)
    props = {p.key: p.value for p in m.metadata_props}
    props.update({
        "precision": "int8",
        "quantized_from": os.path.basename(a.model),
        "quantized_from_sha256": _sha256(a.model),
        "calibration": f"{calib['photos']} train photos, ranges keeping {calib['percentile']} % of values",
        "val_macro_accuracy": f"{ev['int8']['val']['macro']:.4f}",
        "val_macro_accuracy_fp32": f"{ev['fp32']['val']['macro']:.4f}",
        "val_per_class_accuracy": json.dumps([round(v, 4) for v in per("int8", "val")]),
        "val_per_class_accuracy_fp32": json.dumps([round(v, 4) for v in per("fp32", "val")]),
        "test_macro_accuracy": f"{ev['int8']['test']['macro']:.4f}",
    })
    del m.metadata_props[:]
    for k, v in props.items():
        m.metadata_props.add(key=k, value=v)
    onnx.save(m, a.int8)

    runs = {"fp32": [], "int8": []}
    for _ in range(a.rounds):
        for prec, path in (("fp32", a.model), ("int8", a.int8)):
            runs[prec].append(bench_once(path, a.benchtime))
    ms = {k: statistics.median(v) for k, v in runs.items()}
    entry = dict(
        model=f"{props.get('name', os.path.basename(a.model))} v{props.get('version', '?')}",
        fp32_file=os.path.basename(a.model), int8_file=os.path.basename(a.int8) if a.shipped else None,
        int8_bytes=os.path.getsize(a.int8), fp32_bytes=os.path.getsize(a.model),
        labels=labels, calibration=props["calibration"],
        accuracy={prec: {split: dict(photos=ev[prec][split]["photos"], macro=ev[prec][split]["macro"],
                                     per_class=per(prec, split)) for split in ("val", "test")}
                  for prec in ("fp32", "int8")},
        inference_ms={k: round(v, 3) for k, v in ms.items()}, inference_runs=runs, ratio=ms["int8"] / ms["fp32"],
        cpu=cpu_name(), date=datetime.date.today().isoformat(),
        command=f"make quantize QUANT_MODEL={a.model}",
    )
    with open(a.metrics) as f:
        metrics = json.load(f)
    metrics.setdefault("quantization", {})[entry["model"]] = entry
    with open(a.metrics, "w") as f:
        json.dump(metrics, f, indent=1)
    card.write(os.path.join(os.path.dirname(a.metrics), "MODEL.md"), metrics)
    for split in ("val", "test"):
        print(f"{split}: fp32 {ev['fp32'][split]['macro']:.4f} {per('fp32', split)}, "
              f"int8 {ev['int8'][split]['macro']:.4f} {per('int8', split)}")
    print(f"inference: fp32 {ms['fp32']:.2f} ms, int8 {ms['int8']:.2f} ms per image ({entry['ratio']:.2f}x)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("probe", help="the model with every tensor to calibrate as an output")
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    b = sub.add_parser("build", help="the QDQ int8 model from the measured ranges")
    b.add_argument("--model", required=True)
    b.add_argument("--ranges", required=True, help="tools/calibrate's JSON: {\"tensors\": {name: [lo, hi]}}")
    b.add_argument("--out", required=True)
    r = sub.add_parser("record", help="accuracy into the int8 model's metadata; both models timed; the card")
    r.add_argument("--model", required=True, help="the fp32 model")
    r.add_argument("--int8", required=True)
    r.add_argument("--ranges", required=True)
    r.add_argument("--evals", required=True, help="folder of tools/evaluate's {fp32,int8}-{val,test}.json")
    r.add_argument("--metrics", default="resources/metrics.json")
    r.add_argument("--shipped", action="store_true", help="the int8 file is committed beside the default model")
    r.add_argument("--rounds", type=int, default=5)
    r.add_argument("--benchtime", default="200x")
    a = ap.parse_args()
    {"probe": probe, "build": build, "record": record}[a.cmd](a)


if __name__ == "__main__":
    main()
