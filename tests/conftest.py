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
