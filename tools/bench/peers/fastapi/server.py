"""Peer implementation of catsdogs' POST /upload for `make bench` (issue 13).

FastAPI + uvicorn (1 worker) + OpenCV: cv2.imdecode, bilinear resize of the
shorter side, centre crop, normalisation, and cv2.dnn running the same ONNX
model as the Go service, one image per request (batch 1). Run with Debian's
/usr/bin/python3 (python3-fastapi, python3-uvicorn, python3-opencv,
python3-multipart; python3-uvloop is used when present).

Environment (tools/bench/peers.go passes what the service reports at GET /model):
  PORT, MODEL_PATH
  RESIZE_SHORTER   shorter side resized to this (INTER_LINEAR), then
  CROP_W, CROP_H   a centred crop of this size
  MEAN, STD        3 comma-separated floats, applied to pixel/255 in RGB order
  LAYOUT           NCHW or NHWC
  LABELS           comma-separated, in output order
  OUTPUT           logits (softmax applied, default) or probabilities
  NETS             cv2.dnn.Net instances (default: one per core, see below)
  CV_THREADS       OpenCV threads (cv2.setNumThreads, default 1)
  MAX_UPLOAD_BYTES default 10 MiB, as the Go service
"""

import os
import queue
import sys

import cv2
import numpy as np
import uvicorn
from fastapi import FastAPI, File
from fastapi.responses import JSONResponse


def env(name, default):
    v = os.environ.get(name, "")
    return v if v != "" else default


def floats3(name, default):
    a = np.array([float(x) for x in env(name, default).split(",")], dtype=np.float32)
    if a.shape != (3,):
        raise SystemExit(f"{name} must be 3 comma-separated numbers")
    return a


PORT = int(env("PORT", "8080"))
MODEL_PATH = env("MODEL_PATH", "") or sys.exit("MODEL_PATH is required (make bench passes the model it benchmarks)")
CROP_W = int(env("CROP_W", "144"))
CROP_H = int(env("CROP_H", "144"))
RESIZE_SHORTER = int(env("RESIZE_SHORTER", str(max(CROP_W, CROP_H))))
MEAN = floats3("MEAN", "0.485,0.456,0.406")
STD = floats3("STD", "0.229,0.224,0.225")
LAYOUT = env("LAYOUT", "NCHW").upper()
LABELS = env("LABELS", "Cat,Dog,Other").split(",")
SOFTMAX = env("OUTPUT", "logits") != "probabilities"
MAX_UPLOAD_BYTES = int(env("MAX_UPLOAD_BYTES", str(10 << 20)))
# cv2.dnn.Net is not thread-safe, and FastAPI runs sync endpoints in a thread
# pool, so each request borrows a net from a pool of NETS (1 would be a lock).
# One net per core with one OpenCV thread each (decode, resize and forward of
# different requests overlap: cv2 releases the GIL) beat one net with OpenCV's
# threads (TBB) at concurrency 8 on the 2-core dev machine (training running):
# about 128 against 99 req/s (NETS=2 with 2 threads each: 77 to 123).
CORES = len(os.sched_getaffinity(0))
NETS = int(env("NETS", str(CORES)))
CV_THREADS = int(env("CV_THREADS", "1"))
if LAYOUT not in ("NCHW", "NHWC"):
    raise SystemExit("LAYOUT must be NCHW or NHWC")
if RESIZE_SHORTER < min(CROP_W, CROP_H):
    raise SystemExit("RESIZE_SHORTER is smaller than the crop")

# Pixel → normalised value, folded into one multiply-add per channel.
SCALE = (1.0 / (255.0 * STD)).astype(np.float32)
OFFSET = (-MEAN / STD).astype(np.float32)

def opencv_readable(path):
    """The model with each Clip in its opset-10 form (min and max attributes):
    OpenCV 4.6's importer reads only that one, and torch exports opset 11+'s
    (min and max as inputs) for MobileNetV2's ReLU6. The rewrite an OpenCV
    user would make, with Debian's onnx package; the maths is unchanged."""
    import onnx
    from onnx import helper, numpy_helper
    m = onnx.load(path)
    g = m.graph
    known = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    known.update({n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in g.node if n.op_type == "Constant"})
    for n in g.node:
        if n.op_type != "Clip" or len(n.input) < 2:
            continue
        for i, attr in ((1, "min"), (2, "max")):
            if len(n.input) > i and n.input[i]:
                n.attribute.append(helper.make_attribute(attr, float(known[n.input[i]])))
        del n.input[1:]
    read = {i for n in g.node for i in n.input}
    keep = [n for n in g.node if n.op_type != "Constant" or n.output[0] in read]
    del g.node[:]
    g.node.extend(keep)
    for o in m.opset_import:
        if o.domain in ("", "ai.onnx"):
            o.version = 10
    return np.frombuffer(m.SerializeToString(), np.uint8)


def read_net():
    try:
        return cv2.dnn.readNetFromONNX(MODEL_PATH)
    except cv2.error:
        return cv2.dnn.readNetFromONNX(opencv_readable(MODEL_PATH))


cv2.setNumThreads(CV_THREADS)
nets = queue.Queue()
for _ in range(NETS):
    net = read_net()
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    dims = (1, 3, CROP_H, CROP_W) if LAYOUT == "NCHW" else (1, CROP_H, CROP_W, 3)
    net.setInput(np.zeros(dims, np.float32))
    net.forward()  # warm-up: the first pass allocates
    nets.put(net)


def scaled_size(w, h, r):
    """The size with the shorter side equal to r, rounded half up (as the service)."""
    if w <= h:
        return r, (2 * h * r + w) // (2 * w)
    return (2 * w * r + h) // (2 * h), r


def tensor_of(data):
    # IMREAD_COLOR: 3-channel BGR, EXIF orientation applied.
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        return None
    h, w = img.shape[:2]
    nw, nh = scaled_size(w, h, RESIZE_SHORTER)
    nw, nh = max(nw, CROP_W), max(nh, CROP_H)
    img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    left, top = (nw - CROP_W) // 2, (nh - CROP_H) // 2
    rgb = cv2.cvtColor(img[top : top + CROP_H, left : left + CROP_W], cv2.COLOR_BGR2RGB)
    x = rgb.astype(np.float32) * SCALE + OFFSET  # HWC
    x = x.transpose(2, 0, 1) if LAYOUT == "NCHW" else x
    return np.ascontiguousarray(x[None])


def error(status, code, detail):
    return JSONResponse({"error": code, "detail": detail}, status_code=status)


app = FastAPI(title="catsdogs peer (FastAPI + OpenCV DNN)", docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/health")
async def health():
    return {"status": "OK"}


@app.post("/upload")
def upload(file: bytes = File(...)):
    if len(file) == 0:
        return error(400, "file_empty", "the file part is empty")
    if len(file) > MAX_UPLOAD_BYTES:
        return error(413, "payload_too_large", f"file is larger than {MAX_UPLOAD_BYTES} bytes")
    x = tensor_of(file)
    if x is None:
        return error(400, "unsupported_image", "cannot decode image")
    net = nets.get()
    try:
        net.setInput(x)
        scores = net.forward()[0].astype(np.float64)
    finally:
        nets.put(net)
    if SOFTMAX:
        e = np.exp(scores - scores.max())
        scores = e / e.sum()
    best = int(scores.argmax())
    return {"prediction": LABELS[best] if best < len(LABELS) else str(best), "values": scores.tolist()}


if __name__ == "__main__":
    print(
        f"fastapi peer on 127.0.0.1:{PORT}, model {MODEL_PATH}, {LAYOUT} {CROP_W}x{CROP_H} "
        f"(shorter side {RESIZE_SHORTER}), {NETS} net(s), OpenCV {cv2.__version__} ({cv2.getNumThreads()} thread(s))",
        flush=True,
    )
    uvicorn.run(app, host="127.0.0.1", port=PORT, workers=1, access_log=False, log_level="warning")
