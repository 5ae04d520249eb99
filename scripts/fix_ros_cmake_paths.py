"""Point the ROS wheels' exported CMake targets at this interpreter.

The PyPI ROS 2 message wheels were built in a manylinux container, and their exported CMake
targets still name that container's Python and numpy include directories. CMake refuses to
generate a project that links such a target ("includes non-existent path"), so every package
whose messages depend on std_msgs would fail to configure. Rewriting the two paths to this
interpreter's real include directories fixes it; running it again changes nothing.
"""

import pathlib
import re
import sys
import sysconfig

import numpy

BUILD_PYTHON = re.compile(r"/opt/python/cp3\d+-cp3\d+/include/python3\.\d+")
BUILD_NUMPY = re.compile(r"/opt/python/cp3\d+-cp3\d+/lib/python3\.\d+/site-packages/numpy/(?:_core|core)/include")


def fix_tree(prefix: pathlib.Path) -> int:
    """Rewrite every exported CMake file under prefix/share; returns how many files changed."""
    python_include = sysconfig.get_paths()["include"]
    numpy_include = numpy.get_include()
    changed = 0
    for path in (prefix / "share").rglob("*.cmake"):
        text = path.read_text()
        fixed = BUILD_NUMPY.sub(numpy_include, BUILD_PYTHON.sub(python_include, text))
        if fixed != text:
            path.write_text(fixed)
            changed += 1
    return changed


if __name__ == "__main__":
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else sys.prefix)
    print(f"fixed build-machine paths in {fix_tree(root)} CMake file(s) under {root}/share")
