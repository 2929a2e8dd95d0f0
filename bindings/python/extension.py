# SPDX-License-Identifier: MIT
"""extension.py -- the one description of the C extension volipmem._volipmem:
its sources and compile flags, read by both builds so they cannot drift.

* setup.py (pip install ./bindings/python) imports it.
* CMakeLists.txt runs `python3 extension.py cmake` at configure time and
  gets `SOURCES;...` / `CFLAGS;...` lines (CMake lists).

Paths are relative to this folder. The library itself (libvolipmem and
volipmem.h) is found by setup.py: a CMake build tree or pkg-config.
"""

import sys

NAME = "volipmem._volipmem"

SOURCES = [
    "src/module.c",    # open/close, the root, FAS and commit calls
    "src/value.c",     # Python object <-> heap value, stable key hash
    "src/pdict.c",     # persistent dict + PDictBase
    "src/plist.c",     # persistent list + PListBase
    "src/packed.c",    # packed values: a document as one blob
]

# The project's C dialect (C11 with GNU extensions) and warnings; only the
# module init function is exported.
CFLAGS = ["-std=gnu11", "-fvisibility=hidden", "-Wall", "-Wextra"]


def main(argv):
    if argv[1:] != ["cmake"]:
        print("usage: extension.py cmake", file=sys.stderr)
        return 2
    print("SOURCES=" + ";".join(SOURCES))
    print("CFLAGS=" + ";".join(CFLAGS))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
