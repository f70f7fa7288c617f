'use strict';
// Peer implementation of catsdogs' POST /upload for `make bench` (issue 13):
// fastify + @fastify/multipart, sharp (libvips) for decode/resize, and
// onnxruntime-node for inference, serving the same ONNX model as the Go
// service with the same preprocessing, one image per request (batch 1).
//
// Environment (tools/bench/peers.go passes what the service reports at GET /model):
//   PORT, MODEL_PATH
//   RESIZE_SHORTER          shorter side resized to this (bilinear), then
//   CROP_W, CROP_H          a centred crop of this size
//   MEAN, STD               3 comma-separated floats, applied to pixel/255 in RGB order
//   LAYOUT                  NCHW or NHWC
//   LABELS                  comma-separated, in output order
//   OUTPUT                  logits (softmax applied, default) or probabilities
//   INTRA_OP_THREADS        ONNX Runtime intra-op threads (default 1, see below)
//   MAX_UPLOAD_BYTES        default 10 MiB, as the Go service

const fastify = require('fastify');
const multipart = require('@fastify/multipart');
const sharp = require('sharp');
const ort = require('onnxruntime-node');

function env(name, def) {
  const v = process.env[name];
  return v === undefined || v === '' ? def : v;
}
function int(name, def) {
  const n = Number.parseInt(env(name, String(def)), 10);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive integer`);
  return n;
}
function floats3(name, def) {
  const a = env(name, def).split(',').map(Number);
  if (a.length !== 3 || a.some((x) => !Number.isFinite(x))) throw new Error(`${name} must be 3 comma-separated numbers`);
  return a;
}

const PORT = int('PORT', 8080);
const MODEL_PATH = env('MODEL_PATH', '');
if (!MODEL_PATH) throw new Error('MODEL_PATH is required (make bench passes the model it benchmarks)');
const CROP_W = int('CROP_W', 144);
const CROP_H = int('CROP_H', 144);
const RESIZE_SHORTER = int('RESIZE_SHORTER', Math.max(CROP_W, CROP_H));
const MEAN = floats3('MEAN', '0.485,0.456,0.406');
const STD = floats3('STD', '0.229,0.224,0.225');
const LAYOUT = env('LAYOUT', 'NCHW').toUpperCase();
const LABELS = env('LABELS', 'Cat,Dog,Other').split(',');
const SOFTMAX = env('OUTPUT', 'logits') !== 'probabilities';
// onnxruntime-node's session.run() runs on the JS main thread (the promise
// only defers it with setImmediate), so inferences never overlap; sharp works
// in libuv's pool meanwhile. On the 2-core dev machine (a training run in the
// background) 1 intra-op thread gave more throughput at concurrency 8 than 2:
// about 126 against 83 req/s, 500x375 JPEGs, measured alternately twice each.
// A second ORT thread only competes with sharp and the event loop for a core.
const INTRA_OP_THREADS = int('INTRA_OP_THREADS', 1);
const MAX_UPLOAD_BYTES = int('MAX_UPLOAD_BYTES', 10 << 20);
if (LAYOUT !== 'NCHW' && LAYOUT !== 'NHWC') throw new Error('LAYOUT must be NCHW or NHWC');
if (RESIZE_SHORTER < Math.min(CROP_W, CROP_H)) throw new Error('RESIZE_SHORTER is smaller than the crop');

// lut[c][v]: normalised value of 8-bit pixel v in channel c (float32 like the model input).
const LUT = [0, 1, 2].map((c) => {
  const t = new Float32Array(256);
  for (let v = 0; v < 256; v++) t[v] = (v / 255 - MEAN[c]) / STD[c];
  return t;
});
const PLANE = CROP_W * CROP_H;
const DIMS = LAYOUT === 'NCHW' ? [1, 3, CROP_H, CROP_W] : [1, CROP_H, CROP_W, 3];

class BadImage extends Error {
  constructor(code, detail) {
    super(detail);
    this.statusCode = 400;
    this.code = code;
  }
}

// The size with the shorter side equal to r, rounded half up (as the service).
function scaledSize(w, h, r) {
  if (w <= h) return [r, Math.floor((2 * h * r + w) / (2 * w))];
  return [Math.floor((2 * w * r + h) / (2 * h)), r];
}

// Upright RGB pixels of the centred CROP_W x CROP_H crop, HWC uint8. The
// exact resized size comes from the header (metadata() decodes no pixels):
// fit 'cover' would do resize + centre crop in one call, but its own rounding
// puts the crop a pixel off the service's (and training's) window.
async function pixels(buf) {
  const meta = await sharp(buf).metadata();
  const { width: w, height: h } = meta.autoOrient || meta;
  let [nw, nh] = scaledSize(w, h, RESIZE_SHORTER);
  nw = Math.max(nw, CROP_W);
  nh = Math.max(nh, CROP_H);
  // autoOrient applies the EXIF orientation; large JPEGs are shrunk on load.
  const img = sharp(buf, { autoOrient: true })
    .resize(nw, nh, { fit: 'fill', kernel: 'linear' })
    .extract({ left: (nw - CROP_W) >> 1, top: (nh - CROP_H) >> 1, width: CROP_W, height: CROP_H });
  const { data, info } = await img.removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 || info.width !== CROP_W || info.height !== CROP_H) {
    throw new Error(`unexpected pixel layout ${info.width}x${info.height}x${info.channels}`);
  }
  return data;
}

function tensorOf(px) {
  const out = new Float32Array(3 * PLANE);
  const [l0, l1, l2] = LUT;
  if (LAYOUT === 'NCHW') {
    for (let i = 0, j = 0; i < PLANE; i++, j += 3) {
      out[i] = l0[px[j]];
      out[PLANE + i] = l1[px[j + 1]];
      out[2 * PLANE + i] = l2[px[j + 2]];
    }
  } else {
    for (let j = 0; j < 3 * PLANE; j += 3) {
      out[j] = l0[px[j]];
      out[j + 1] = l1[px[j + 1]];
      out[j + 2] = l2[px[j + 2]];
    }
  }
  return new ort.Tensor('float32', out, DIMS);
}

function probabilities(scores) {
  const v = Array.from(scores);
  if (!SOFTMAX) return v;
  const m = Math.max(...v);
  const e = v.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

async function main() {
  const session = await ort.InferenceSession.create(MODEL_PATH, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    intraOpNumThreads: INTRA_OP_THREADS,
    interOpNumThreads: 1,
  });
  const inputName = session.inputNames[0];
  const outputName = session.outputNames[0];
  // Warm up once so the first request does not pay for allocations.
  await session.run({ [inputName]: new ort.Tensor('float32', new Float32Array(3 * PLANE), DIMS) });

  const app = fastify({ logger: false, bodyLimit: MAX_UPLOAD_BYTES });
  await app.register(multipart, { limits: { fileSize: MAX_UPLOAD_BYTES, files: 1, fields: 10, parts: 20 } });

  app.setErrorHandler((err, req, reply) => {
    const status = err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) console.error(err);
    reply.code(status).send({ error: err.code || (status === 500 ? 'internal_error' : 'bad_request'), detail: err.message });
  });

  app.get('/health', async () => ({ status: 'OK' }));

  app.post('/upload', async (req, reply) => {
    if (!req.isMultipart()) throw new BadImage('unsupported_media_type', 'not multipart/form-data');
    const part = await req.file();
    if (!part || part.fieldname !== 'file') throw new BadImage('file_missing', 'multipart field "file" is required');
    const buf = await part.toBuffer(); // 413 past MAX_UPLOAD_BYTES
    if (buf.length === 0) throw new BadImage('file_empty', 'the file part is empty');
    let px;
    try {
      px = await pixels(buf);
    } catch (e) {
      throw new BadImage('unsupported_image', `cannot decode image: ${e.message}`);
    }
    const out = await session.run({ [inputName]: tensorOf(px) });
    const values = probabilities(out[outputName].data);
    let best = 0;
    for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
    return { prediction: LABELS[best] ?? String(best), values };
  });

  await app.listen({ host: '127.0.0.1', port: PORT });
  console.log(`fastify peer on 127.0.0.1:${PORT}, model ${MODEL_PATH}, ${LAYOUT} ${CROP_W}x${CROP_H} ` +
    `(shorter side ${RESIZE_SHORTER}), intra-op threads ${INTRA_OP_THREADS}, onnxruntime-node ${require('onnxruntime-node/package.json').version}, sharp ${sharp.versions.sharp}`);
  for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => app.close().then(() => process.exit(0)));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
