import os

import pytest

DATA_DIR = os.path.join(os.path.dirname(__file__), os.pardir, "fastengage", "data")


@pytest.fixture(scope="session")
def retail_table():
    """The bundled UCI Online Retail table with amount = Quantity * UnitPrice, int64 customers."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from fastengage.datasets import load_online_retail

    return load_online_retail()
