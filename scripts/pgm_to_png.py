#!/usr/bin/env python3
"""Greyscale PGM (P5, 8 bit) to a small greyscale PNG, with the grey levels reduced to LEVELS
(default 64) so that the montages in docs/montages stay small. Needs numpy only.

    python3 scripts/pgm_to_png.py IN.pgm OUT.png [LEVELS]
"""
import struct
import sys
import zlib

import numpy as np


def read_pgm(path):
    data = open(path, "rb").read()
    fields, pos = [], 0
    while len(fields) < 4:
        while data[pos:pos + 1].isspace():
            pos += 1
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    if fields[0] != b"P5" or int(fields[3]) != 255:
        raise SystemExit(f"{path}: not an 8-bit binary PGM")
    w, h = int(fields[1]), int(fields[2])
    return np.frombuffer(data[pos + 1:pos + 1 + w * h], np.uint8).reshape(h, w)


def write_png(path, grey):
    h, w = grey.shape
    raw = b"".join(b"\x00" + grey[y].tobytes() for y in range(h))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    open(path, "wb").write(png)


def main():
    if len(sys.argv) not in (3, 4):
        raise SystemExit(__doc__)
    levels = int(sys.argv[3]) if len(sys.argv) == 4 else 64
    grey = read_pgm(sys.argv[1]).astype(np.float32)
    step = 255.0 / (levels - 1)
    write_png(sys.argv[2], (np.round(grey / step) * step).clip(0, 255).astype(np.uint8))


if __name__ == "__main__":
    main()
