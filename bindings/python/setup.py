# SPDX-License-Identifier: MIT
"""setup.py -- build the volipmem package with setuptools:

    pip install --no-build-isolation --no-index ./bindings/python

The extension's sources and flags come from extension.py (shared with the
CMake build). The library is found, in this order:

1. VOLIPMEM_BUILD_DIR=<dir>: a CMake build tree of this repository;
2. VOLIPMEM_PKG_CONFIG=1: the installed library, through pkg-config;
3. <repo>/build, if the README's build command has run there;
4. otherwise pkg-config (after `cmake --install`).

From a build tree the static libvolipmem.a is linked into the extension,
so the installed package does not depend on the build tree staying; from
pkg-config the shared library is linked, with its libdir as run path.
"""

import atexit
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import extension  # noqa: E402  (this folder's extension.py)


def fail(msg):
    sys.exit("volipmem setup.py: " + msg)


def pc_field(pc, field):
    """A `Field: value` line of a pkg-config file, or ''."""
    with open(pc) as f:
        for line in f:
            if line.startswith(field + ":"):
                return line.split(":", 1)[1].strip()
    return ""


def from_build_tree(build):
    """Extension arguments for the library in CMake build tree `build`."""
    lib = os.path.join(build, "src", "libvolipmem.a")
    pc = os.path.join(build, "volipmem.pc")
    header = os.path.join(REPO, "include", "volipmem.h")
    for f in (lib, pc, header):
        if not os.path.exists(f):
            fail("%s not found: build the library first (cmake -S %s -B "
                 "%s && cmake --build %s)" % (f, REPO, build, build))
    # The static archive needs the library's private dependencies, which
    # its pkg-config file lists (Libs.private: -lxxhash -lpthread).
    libs = [a[2:] for a in shlex.split(pc_field(pc, "Libs.private"))
            if a.startswith("-l")]
    return pc_field(pc, "Version"), dict(
        include_dirs=[os.path.join(REPO, "include")],
        extra_objects=[lib],
        libraries=libs,
        # the archive's own exported symbols stay inside the extension
        extra_link_args=["-Wl,--exclude-libs,libvolipmem.a"])


def pkg_config(*args):
    try:
        r = subprocess.run(["pkg-config"] + list(args) + ["volipmem"],
                           capture_output=True, text=True)
    except FileNotFoundError:
        fail("pkg-config not found (apt-get install pkg-config), and no "
             "build tree at %s/build" % REPO)
    if r.returncode != 0:
        fail("no libvolipmem: neither a build tree at %s/build nor an "
             "installed library known to pkg-config (%s). Build it "
             "(cmake -S . -B build && cmake --build build), install it "
             "(cmake --install build) or set VOLIPMEM_BUILD_DIR"
             % (REPO, r.stderr.strip()))
    return r.stdout.strip()


def from_pkg_config():
    """Extension arguments for the installed library."""
    cflags = shlex.split(pkg_config("--cflags"))
    libs = shlex.split(pkg_config("--libs"))
    libdir = pkg_config("--variable=libdir")
    return pkg_config("--modversion"), dict(
        include_dirs=[a[2:] for a in cflags if a.startswith("-I")],
        library_dirs=[a[2:] for a in libs if a.startswith("-L")],
        libraries=[a[2:] for a in libs if a.startswith("-l")],
        runtime_library_dirs=[libdir] if libdir else [])


def library():
    """(version, Extension keyword arguments, build folder or None)."""
    build = os.environ.get("VOLIPMEM_BUILD_DIR")
    if build:
        return from_build_tree(os.path.abspath(build)) + (build,)
    if os.environ.get("VOLIPMEM_PKG_CONFIG") == "1":
        return from_pkg_config() + (None,)
    build = os.path.join(REPO, "build")
    if os.path.exists(os.path.join(build, "src", "libvolipmem.a")):
        return from_build_tree(build) + (build,)
    return from_pkg_config() + (None,)


version, ext_args, build = library()
if not re.fullmatch(r"[0-9]+(\.[0-9]+)*", version):
    fail("cannot tell the library's version (%r)" % version)
# Intermediate files go into the CMake build tree when there is one (else
# into a temporary folder), never into the source folder: two builds never
# share them and the checkout stays clean.
if build:
    tmp = os.path.join(os.path.abspath(build), "bindings", "python", "pip")
    os.makedirs(tmp, exist_ok=True)
else:
    tmp = tempfile.mkdtemp(prefix="volipmem-setup-")
    atexit.register(shutil.rmtree, tmp, True)
# build_ext --force: objects left by an earlier install may have been built
# with other flags or against another library.
options = {"build": {"build_base": tmp}, "egg_info": {"egg_base": tmp},
           "build_ext": {"force": True}}

setup(
    version=version,
    packages=["volipmem"],
    ext_modules=[Extension(
        extension.NAME,
        sources=extension.SOURCES,
        extra_compile_args=extension.CFLAGS,
        **ext_args)],
    options=options,
)
