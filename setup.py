"""Build script: compiles the Cython kernels and installs ``kernels/`` as ``fastengage.kernels``.

Metadata and dependencies live in pyproject.toml; this file only describes the compiled parts.
Every Cython module is listed explicitly so that a stray .pyx never ends up in a wheel by accident.
"""
import glob
import os

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, find_packages, setup

# One place for the Cython directives of every kernel: no bounds checks or wraparound in the hot
# loops (the Python layer validates), C division semantics, and Python 3 language level.
# freethreading_compatible: on a free-threaded CPython (3.14t) importing these modules keeps the
# GIL off. They hold no state that the GIL protected: kernels write only caller-owned outputs;
# mutable objects (id maps, arm tables, RFM states) are changed under their owner's lock; the
# bandit service stream takes rows by atomic add (tests/test_free_threading.py).
CYTHON_DIRECTIVES = {
    "language_level": "3",
    "freethreading_compatible": True,
    "boundscheck": False,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": False,
    "nonecheck": False,
}

CYTHON_MODULES = [
    "bandits.arms_native",
    "bandits.decide_native",
    "bandits.fit_native",
    "bandits.ope_native",
    "bandits.serve_native",
    "common.idmap",
    "common.chunks",
    "clv.native",
    "clv.models_native",
    "clv.spend_native",
    "clv.summary_native",
    "common.yardstick",
    "experiments.native",
    "features.fewids_native",
    "features.fold_native",
    "features.partition_native",
    "features.profile_native",
    "monitor.drift_native",
    "monitor.quality_native",
    "privacy.hmac_native",
    "recommend.fit_native",
    "recommend.serve_native",
    "scoring.native",
]


def _headers(name: str) -> list:
    """The C headers and Cython includes beside a module, and the shared ones in
    kernels/common: a change to one rebuilds the modules that may include it."""
    folder = os.path.join("kernels", name.split(".")[0])
    found = [glob.glob(os.path.join(folder, pattern)) for pattern in ("*.h", "*.pxi")]
    return sorted(set(found[0] + found[1] + glob.glob(os.path.join("kernels", "common", "*.h"))))


extensions = [
    Extension(
        f"fastengage.kernels.{name}",
        [f"kernels/{name.replace('.', '/')}.pyx"],
        depends=_headers(name),
        include_dirs=[np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O3"],
    )
    for name in CYTHON_MODULES
]

setup(
    # Every subpackage of fastengage/ (clv, recommend, scoring, data, ...) plus kernels/ and its
    # capability folders (kernels/common, kernels/features, ...), installed as fastengage.kernels.*.
    packages=(find_packages(include=["fastengage", "fastengage.*"]) + ["fastengage.kernels"]
              + [f"fastengage.kernels.{name}" for name in find_packages("kernels")]),
    package_dir={"fastengage": "fastengage", "fastengage.kernels": "kernels"},
    ext_modules=cythonize(extensions, compiler_directives=CYTHON_DIRECTIVES),
    zip_safe=False,
)
