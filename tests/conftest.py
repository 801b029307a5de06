import os
import sys

import pytest

# Tests live in one folder per capability (tests/features, tests/clv, ...); the plain references
# (naive*.py) and the benchmark helpers stay importable from every one of them.
TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)

DATA_DIR = os.path.join(os.path.dirname(__file__), os.pardir, "fastengage", "data")


@pytest.fixture(scope="session")
def retail_table():
    """The bundled UCI Online Retail table with amount = Quantity * UnitPrice, int64 customers."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from fastengage.datasets import load_online_retail

    return load_online_retail()


# Under pytest-xdist (`.ci/run`: `-n 2 --dist loadfile --no-loadscope-reorder`) files are handed
# to the workers in collection order, so a long file collected last keeps one worker busy after the other has
# finished. These files (the slowest in `--durations` of the CI run; see README "Tests and CI")
# are collected first. Only the order changes: every test still runs.
FIRST = (
    "tests/distributed/test_spark.py",
    "tests/distributed/test_ray.py",
    "tests/tools/test_gate.py",
)


def pytest_collection_modifyitems(config, items):
    def rank(item):
        path = item.nodeid.split("::", 1)[0]
        return FIRST.index(path) if path in FIRST else len(FIRST)
    items.sort(key=rank)  # stable: the order within and among the other files is kept
