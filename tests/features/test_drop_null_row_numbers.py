"""With drop_null_customers=True an amount error still names the row of the input (0-based,
as every "first at row" message), not its position among the rows left after the nulls."""
import numpy as np
import pyarrow as pa
import pytest

import fastengage as fe

KW = dict(customer="cust", time="ts", amount="amt", drop_null_customers=True)


@pytest.mark.parametrize("batch_size", [None, 3])
def test_amount_error_names_the_input_row_after_dropped_nulls(batch_size):
    cust = [None, 7, None, None, 8, 9]
    amt = [1.0, 2.0, 3.0, 4.0, np.inf, 5.0]  # row 4 of the input: customer 8
    t = pa.table({"cust": pa.array(cust, pa.int64()),
                  "ts": pa.array([86_400 * (k + 1) for k in range(6)], pa.timestamp("s")),
                  "amt": amt})
    with pytest.raises(fe.InputError, match=r"first at row 4, customer 8"):
        fe.rfm(t, **KW, batch_size=batch_size)


def test_without_nulls_the_rows_are_counted_as_before():
    t = pa.table({"cust": [7, 8, 9], "ts": pa.array([86_400, 2 * 86_400, 3 * 86_400],
                                                     pa.timestamp("s")),
                  "amt": [1.0, np.nan, 2.0]})
    with pytest.raises(fe.InputError, match=r"first at row 1, customer 8"):
        fe.rfm(t, **KW)
