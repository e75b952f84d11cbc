#!/usr/bin/env python3
"""Digests of OpenCV's INTER_LINEAR resize of the fixture images, the reference that
`crates/detect/tests/resize_matches_opencv.rs` holds our resize to (bit for bit).

Regenerate (needs opencv-python-headless==4.11.0.86 and numpy):
    python3 scripts/reference/cv2_resize_digests.py ../shared/fixtures/images \
        > crates/detect/tests/data/cv2_resize_digests.json
"""
import hashlib
import json
import pathlib
import sys

import cv2

SIZES = [(416, 416), (608, 608), (320, 320), (300, 200), (1000, 700), (384, 288)]


def main() -> None:
    folder = pathlib.Path(sys.argv[1])
    out = {"opencv": cv2.__version__, "interpolation": "INTER_LINEAR", "images": {}}
    for path in sorted(folder.glob("*.png")):
        rgb = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        digests = {}
        for w, h in SIZES:
            resized = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_LINEAR)
            digests[f"{w}x{h}"] = hashlib.sha256(resized.tobytes()).hexdigest()
        out["images"][path.name] = digests
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
