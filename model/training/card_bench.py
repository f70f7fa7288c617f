"""Inference time of the exported model next to the model it replaces, measured in one
run by the service's own benchmark, written into metrics.json and the card.

    /usr/bin/python3 model/training/card_bench.py --export resources --previous build/previous.onnx

Runs `go test ./model -bench '^BenchmarkInference$'` (one image, one ONNX Runtime
thread, the service's session) for each model in turn, `--rounds` times interleaved so
both see the same machine, and keeps the median ms per image of each. `make card-bench`
runs it with the previous default taken from git.
"""

import argparse
import datetime
import json
import os
import re
import statistics
import subprocess

import card
from train import cpu_name


def bench_once(model, benchtime):
    env = dict(os.environ, CATSDOGS_TEST_MODEL=os.path.abspath(model))
    out = subprocess.run(["go", "test", "./model", "-run", "^$", "-bench", "^BenchmarkInference$",
                          "-benchtime", benchtime, "-count", "1"],
                         env=env, check=True, capture_output=True, text=True).stdout
    m = re.search(r"BenchmarkInference\S*\s+\d+\s+([\d.]+) ns/op", out)
    if not m:
        raise SystemExit(f"no BenchmarkInference line in:\n{out}")
    return float(m.group(1)) / 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--export", default="resources")
    ap.add_argument("--previous", required=True, help="the previous default model's .onnx")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--benchtime", default="200x")
    a = ap.parse_args()
    with open(os.path.join(a.export, "metrics.json")) as f:
        m = json.load(f)
    prev = m.get("previous") or {}
    models = [(f"{m['name']} v{m['version']} (this model)", os.path.join(a.export, m["onnx_file"]), m["size"]),
              (f"{prev.get('name', 'previous')} v{prev.get('version', '?')} (previous default)", a.previous,
               prev.get("size", "?"))]
    runs = {label: [] for label, _, _ in models}
    for _ in range(a.rounds):
        for label, path, _ in models:
            runs[label].append(bench_once(path, a.benchtime))
    rows = [dict(model=label, input=f"{size}x{size}", ms=statistics.median(runs[label]), runs=len(runs[label]),
                 all_ms=[round(v, 3) for v in runs[label]]) for label, _, size in models]
    m["inference"] = dict(rows=rows, repeats=a.rounds, cpu=cpu_name(),
                          date=datetime.date.today().isoformat(),
                          command=f"make card-bench (go test ./model -bench '^BenchmarkInference$' -benchtime {a.benchtime})",
                          ratio=rows[0]["ms"] / rows[1]["ms"])
    for r in rows:
        print(f"{r['model']}: median {r['ms']:.2f} ms per image over {r['runs']} runs {r['all_ms']}")
    print(f"ratio this / previous: {m['inference']['ratio']:.2f}")
    with open(os.path.join(a.export, "metrics.json"), "w") as f:
        json.dump(m, f, indent=1)
    card.write(os.path.join(a.export, "MODEL.md"), m)


if __name__ == "__main__":
    main()
