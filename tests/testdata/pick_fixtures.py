#!/usr/bin/env python3
"""Rebuild tests/testdata/images and its ATTRIBUTION.md from the pets dataset.

    /usr/bin/python3 tests/testdata/pick_fixtures.py [--data ../shared/datasets/pets]

Only sources whose licence allows redistribution are used. Files are copied
byte for byte (the dataset already stores small JPEGs), so a fixture scores
exactly like its dataset original: parity entries for such images hold on a
clone without the dataset. Layout = the dataset's (split/class/name.jpg), so
train.py and the tests read fixtures and dataset alike.

It also writes formats/: the first test cat as WebP and as CMYK JPEG, the two
upload formats Go's standard library cannot encode for the tests (needs Pillow).
"""

import argparse
import csv
import json
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# Images per class and split: enough for the smoke run (--limit 8) and for
# tests that take the first few photos of a class.
PER_SPLIT = {"train": 12, "val": 6, "test": 18}

CC0 = "CC0 1.0 (https://creativecommons.org/publicdomain/zero/1.0/)"
SOURCES = {
    "Huy-Ngo/dogs-vs-cats": dict(
        commit="2753348d0473157d8b5a2797d09cbc649cf7da16", licence=CC0,
        author="not named; Kaggle dataset tongpython/cat-and-dog, dedicated to the public domain",
        who="not named"),
    "alexeygrigorev/clothing-dataset-small": dict(
        commit="11961516512414bf9f6c150a832cfd21b54a6b54", licence=CC0,
        author="Alexey Grigorev's crowd-sourced clothing dataset; photographers not named",
        who="not named (clothing dataset, A. Grigorev)"),
    "sk8shape/2020Homework2-Caltech101": dict(
        commit="93e1060b67395d253487746c8d51e73a1689f8a2",
        licence="CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/), as Caltech's data "
                "repository lists Caltech-101; the mirror itself states no licence",
        author="Caltech-101: Fei-Fei Li, Rob Fergus, Pietro Perona (2004)",
        who="Caltech-101 (Fei-Fei, Fergus, Perona)"),
    "jasonepaul/cnn-horse-or-human": dict(
        commit="bbe5a13cbbe4e99ab55ac28cb3989b7d2bde4a2c",
        licence="CC BY 2.0 (https://creativecommons.org/licenses/by/2.0/); the mirror is CC0 1.0",
        author="Laurence Moroney (horse-or-human, computer-rendered)",
        who="Laurence Moroney"),
}

CHANGES = ("Made by the dataset's builder: EXIF orientation applied, converted to RGB, "
           "resized (Lanczos) to 160 px on the shorter side, centre-cropped to at most 320 px "
           "on the longer side, re-encoded as JPEG quality 88, renamed to the first 16 hex "
           "digits of the original file's sha256. Copied here unchanged from that dataset.")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(REPO, "..", "shared", "datasets", "pets"))
    a = ap.parse_args()
    with open(os.path.join(a.data, "manifest.csv"), newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["source_repo"] in SOURCES]
    # The default model's parity images, where redistributable, so its
    # parity check keeps most of its images without the dataset.
    with open(os.path.join(REPO, "resources", "parity.json")) as f:
        pinned = {im["file"] for im in json.load(f)["images"]}

    picked = []
    for split, n in PER_SPLIT.items():
        for label in ("cat", "dog", "other"):
            cand = sorted((r for r in rows if r["split"] == split and r["label"] == label), key=lambda r: r["file"])
            picked += cand[:n] + [r for r in cand[n:] if r["file"] in pinned]

    out = os.path.join(HERE, "images")
    shutil.rmtree(out, ignore_errors=True)
    for r in picked:
        dst = os.path.join(out, r["file"])
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(os.path.join(a.data, r["file"]), dst)

    # Same photo the end-to-end format tests start from: the first test cat.
    from PIL import Image

    first_cat = min(r["file"] for r in picked if r["split"] == "test" and r["label"] == "cat")
    fmt_dir = os.path.join(HERE, "formats")
    shutil.rmtree(fmt_dir, ignore_errors=True)
    os.makedirs(fmt_dir)
    with Image.open(os.path.join(out, first_cat)) as im:
        im.save(os.path.join(fmt_dir, "cat.webp"), quality=80)
        im.convert("CMYK").save(os.path.join(fmt_dir, "cat-cmyk.jpg"), quality=85)

    lines = [
        "# Test images: sources and licences",
        "",
        f"{len(picked)} photos under `images/`, laid out like the pets dataset "
        "(`split/class/name.jpg`), chosen by `pick_fixtures.py`: for each split and class the "
        f"first images by name ({', '.join(f'{s} {n}' for s, n in PER_SPLIT.items())}) from the "
        "sources below, which allow redistribution, plus the default model's parity images "
        "from those sources. Other sources of the dataset (no licence, non-commercial terms, "
        "share-alike) are not used here.",
        "",
        "## Sources",
        "",
    ]
    for repo, s in SOURCES.items():
        lines.append(f"- `{repo}` at commit `{s['commit']}`: licence {s['licence']}; author: {s['author']}.")
    lines += ["", "## Changes (every image)", "", CHANGES, "",
              f"`formats/cat.webp` and `formats/cat-cmyk.jpg` are `images/{first_cat}` converted by "
              "Pillow to lossy WebP (quality 80) and to a CMYK JPEG (quality 85).",
              "", "## Images", "",
              "| file | source repository | path in the source | licence | author |", "|---|---|---|---|---|"]
    short = {repo: s["licence"].split(" (")[0] for repo, s in SOURCES.items()}
    for r in picked:
        lines.append(f"| `{r['file']}` | {r['source_repo']} | `{r['source_path']}` | {short[r['source_repo']]} | {SOURCES[r['source_repo']]['who']} |")
    with open(os.path.join(HERE, "ATTRIBUTION.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{len(picked)} images, {sum(os.path.getsize(os.path.join(out, r['file'])) for r in picked)} bytes")


if __name__ == "__main__":
    main()
