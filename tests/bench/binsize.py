"""What a binary is made of: the sizes of its ELF sections, in MiB, largest first.

usage: binsize.py BINARY [BINARY ...]

Our release binaries carry no symbol table (the linker drops it with the debug info), so
attribution to crates is by difference between binaries (see docs/benchmarks.md). Prints one
JSON line per binary. Not part of the test suite.
"""
import json
import os
import subprocess
import sys


def sections(binary):
    listing = subprocess.run(
        ["readelf", "-SW", binary], capture_output=True, text=True, check=True
    ).stdout
    sizes = {}
    for line in listing.splitlines():
        line = line.strip()
        if not line.startswith("["):
            continue
        fields = line.split("]", 1)[1].split()
        if len(fields) < 5 or not fields[0].startswith("."):
            continue
        name, kind, size = fields[0], fields[1], int(fields[4], 16)
        if kind != "NOBITS" and size >= 2**16:
            sizes[name] = size
    return sizes


for binary in sys.argv[1:]:
    sizes = sections(binary)
    print(json.dumps({
        "binary": os.path.basename(binary),
        "binaryMiB": round(os.path.getsize(binary) / 2**20, 1),
        "sectionsMiB": {
            name: round(size / 2**20, 1)
            for name, size in sorted(sizes.items(), key=lambda item: -item[1])
            if size >= 2**19
        },
    }))
