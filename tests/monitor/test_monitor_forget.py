"""Profile.forget (fastengage.privacy.forget protocol): ids leave id columns, the saved file holds
no trace of them, what stays equals a profile built without those rows, and the record is
honest about pooled columns."""
import numpy as np
import pyarrow as pa
import pytest

from fastengage.errors import InputError
from fastengage.monitor import Profile, drift
from fastengage.privacy.forget import find_traces

STRING_IDS = ["cust-7f3a91c2e4", "cust-0b77de1a55", "cust-c2d94e0f18", "cust-5e1a2b3c4d"]
INT_IDS = [912345678901, 923456789012, 934567890123, 945678901234]


def _table(ids, seed=0):
    rng = np.random.default_rng(seed)
    n = 400
    rows = rng.integers(0, len(ids), n)
    return pa.table({"customer": pa.array([ids[i] for i in rows]),
                     "amount": rng.gamma(2.0, 10.0, n), "channel": rng.choice(["web", "app"], n)})


def _float_bytes(ids):
    return [np.float64(i).tobytes() for i in ids]


def test_string_ids_leave_the_categorical_id_column_and_the_saved_file(tmp_path):
    table = _table(STRING_IDS)
    profile = Profile.from_data(table)
    gone = STRING_IDS[:2]
    record = profile.forget(gone + ["never-seen"], request="ticket-17")
    keep = ~np.isin(np.array(table["customer"].to_pylist()), gone)
    rebuilt = Profile.from_data(table.filter(pa.array(keep)), ["customer"])
    assert profile.state("customer").values.equals(rebuilt.state("customer").values)
    assert np.array_equal(profile.state("customer").counts, rebuilt.state("customer").counts)
    assert record.customers_requested == 3 and record.customers_found == 2
    assert record.rows_removed == int((~keep).sum())
    assert record.exact is False and "amount" in record.notes and record.request == "ticket-17"
    assert record.details["columns"] == {"customer": int((~keep).sum()), "channel": 0}
    assert "cust-" not in record.to_json()
    path = tmp_path / "p.profile"
    profile.save(path)
    assert find_traces(path, gone) == []
    assert find_traces(path, STRING_IDS[2:])  # the others are still there: the search works
    loaded = Profile.load(path)
    assert loaded.state("customer").n == rebuilt.state("customer").n


def test_integer_id_column_named_in_id_columns_equals_a_rebuild(tmp_path):
    table = _table(INT_IDS, seed=1)
    profile = Profile.from_data(table, ["customer", "amount"], mode="exact")
    gone = INT_IDS[1:3]
    record = profile.forget(np.array(gone), id_columns=["customer"])
    keep = ~np.isin(table["customer"].to_numpy(), gone)
    rebuilt = Profile.from_data(table.filter(pa.array(keep)), ["customer"], mode="exact")
    ours, want = profile.state("customer"), rebuilt.state("customer")
    assert np.array_equal(ours.values, want.values)
    assert (ours.n, ours.minimum, ours.maximum, ours.mean, ours.m2) == \
        (want.n, want.minimum, want.maximum, want.mean, want.m2)
    assert record.customers_found == 2 and record.rows_removed == int((~keep).sum())
    path = tmp_path / "p.profile"
    profile.save(path)
    raw = path.read_bytes()
    import io
    import zipfile

    blobs = [zipfile.ZipFile(io.BytesIO(raw)).read(m) for m in zipfile.ZipFile(
        io.BytesIO(raw)).namelist()]
    assert not any(form in blob for form in _float_bytes(gone) for blob in blobs)
    assert any(form in blob for form in _float_bytes(INT_IDS[:1]) for blob in blobs)
    # the profile still works for drift after forgetting
    assert drift(Profile.load(path), table, columns=["customer"]).num_rows == 1


def test_numeric_columns_are_left_alone_unless_named_and_sketches_are_refused():
    table = _table(INT_IDS, seed=2)
    profile = Profile.from_data(table, ["customer", "amount"], mode="exact")
    before = profile.state("customer").values.copy()
    record = profile.forget(INT_IDS[:1])
    assert np.array_equal(profile.state("customer").values, before)  # numeric: not named
    assert record.customers_found == 0 and record.exact is False
    sketched = Profile.from_data(table, ["customer"], mode="sketch", sketch_size=8)
    with pytest.raises(InputError, match="sketched"):
        sketched.forget(INT_IDS[:1], id_columns="customer")
    with pytest.raises(InputError, match="not in this profile"):
        profile.forget(INT_IDS[:1], id_columns=["nope"])


def test_profile_of_ids_only_is_exact_after_forget():
    table = _table(STRING_IDS, seed=3).select(["customer"])
    profile = Profile.from_data(table)
    record = profile.forget(STRING_IDS[0])
    assert record.exact is True
    assert STRING_IDS[0] not in profile.state("customer").values.to_pylist()
