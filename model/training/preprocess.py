"""Reference preprocessing: the exact steps the Go server applies before inference.

The server (model/preprocess.go) mirrors this file step by step, and
resources/parity.json pins the scores this code produces, so any drift between
training and serving fails CI. Keep the two in lockstep.

Steps, all recorded in the ONNX metadata by onnx_meta.py:
  1. decode, apply EXIF orientation, composite alpha on white, convert to RGB;
  2. resize so the shorter side is `resize` pixels (bilinear with antialiasing,
     i.e. Pillow's BILINEAR), then centre-crop `size` x `size`;
  3. scale to [0, 1], subtract `mean`, divide by `std` per channel (RGB order);
  4. lay out as NCHW float32.
"""

import numpy as np
from PIL import Image, ImageOps

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def load_rgb(path):
    """Decode a file the way the server does: EXIF-oriented, alpha on white, RGB."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            im = im.convert("RGBA")
            bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(bg, im)
        return im.convert("RGB")


def scaled_size(w, h, resize):
    """New (w, h) with the shorter side equal to `resize`, rounded half up.

    Integer arithmetic so Go and Python round identically.
    """
    if w <= h:
        return resize, (2 * h * resize + w) // (2 * w)
    return (2 * w * resize + h) // (2 * h), resize


def resize_center_crop(im, resize, size):
    nw, nh = scaled_size(im.width, im.height, resize)
    nw, nh = max(nw, size), max(nh, size)
    if (nw, nh) != im.size:
        im = im.resize((nw, nh), Image.BILINEAR)
    left, top = (nw - size) // 2, (nh - size) // 2
    return im.crop((left, top, left + size, top + size))


def to_tensor(im, mean=MEAN, std=STD):
    """HWC uint8 RGB -> CHW float32 normalised."""
    a = np.asarray(im, dtype=np.float32) / np.float32(255.0)
    a = (a - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(a.transpose(2, 0, 1))


def reference_input(path, resize, size):
    return to_tensor(resize_center_crop(load_rgb(path), resize, size))
