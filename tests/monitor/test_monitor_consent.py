"""consent= on the monitor's entry points (issue #14 part 2): Profile.from_data, Profile.update
and drift() with ``consent=ConsentFilter(...)`` equal the same calls on
``privacy.consented(...).data``, and the exclusion report is reachable."""
import numpy as np
import pyarrow as pa
import pytest

from fastengage.errors import InputError
from fastengage.monitor import Profile, drift
from fastengage.privacy import ConsentFilter, consented

T0 = np.datetime64("2021-01-01T00:00:00", "us")
DAY = np.timedelta64(1, "D")
AS_OF = T0 + 200 * DAY


def _events(seed, n=3000, n_customers=150, shift=0.0) -> pa.Table:
    rng = np.random.default_rng(seed)
    c = rng.integers(0, n_customers, n)
    return pa.table({
        "customer": pa.array([f"cust-{k:04d}" for k in c]),
        "time": pa.array(T0 + rng.integers(0, 180 * 86_400, n).astype("timedelta64[s]"),
                         pa.timestamp("us")),
        # customers with a high code spend more: dropping them moves the distribution
        "amount": rng.gamma(2.0, 20.0, n) + c * (0.5 + shift),
        "channel": pa.array(rng.choice(["web", "app", "store"], n)),
    })


def _consents(n_customers=150, seed=5) -> pa.Table:
    """Granted from day 0 to 40% of customers, from day 60 to 30%, granted from day 0 and
    withdrawn at day 90 for 10%; nothing for the rest."""
    u = np.random.default_rng(seed).random(n_customers)
    ids = np.array([f"cust-{k:04d}" for k in range(n_customers)])
    early, late, gone = u < 0.4, (u >= 0.4) & (u < 0.7), (u >= 0.7) & (u < 0.8)
    granted = early | late | gone
    customer = np.concatenate([ids[granted], ids[gone]])
    start = np.concatenate([np.where(late, T0 + 60 * DAY, T0)[granted],
                            np.full(gone.sum(), T0 + 90 * DAY)])
    status = ["granted"] * int(granted.sum()) + ["withdrawn"] * int(gone.sum())
    return pa.table({"customer": customer, "purpose": ["analytics"] * len(customer),
                     "status": status, "valid_from": pa.array(start, pa.timestamp("us")),
                     "valid_to": pa.nulls(len(customer), pa.timestamp("us"))})


def _rule():
    return ConsentFilter(_consents(), purpose="analytics", as_of=AS_OF)


def _kept(events, time="time"):
    return consented(events, _consents(), customer="customer", time=time, purpose="analytics",
                     as_of=AS_OF)


COLUMNS = ["amount", "channel"]


def _same_profile(a: Profile, b: Profile, moments_rel=0.0):
    """Equal profiles; merged batches may round the moments differently (documented)."""
    sa, sb = a.summary().to_pylist(), b.summary().to_pylist()
    for ra, rb in zip(sa, sb):
        for key in ("mean", "std"):
            if ra[key] is not None:
                assert ra.pop(key) == pytest.approx(rb.pop(key), rel=moments_rel, abs=0)
        assert ra == rb
    for c in COLUMNS:
        sa, sb = a.state(c), b.state(c)
        if c == "amount":
            np.testing.assert_array_equal(sa.values, sb.values)
        else:
            assert sa.values.equals(sb.values)
            np.testing.assert_array_equal(sa.counts, sb.counts)


@pytest.mark.parametrize("time", ["time", None])
def test_profile_from_data_with_consent_equals_profile_of_consented_rows(time):
    events = _events(0)
    kept, report = _kept(events, time)
    assert 0 < kept.num_rows < events.num_rows
    rule = _rule()
    mine = Profile.from_data(events, COLUMNS, consent=rule, customer="customer", time=time)
    theirs = Profile.from_data(kept, COLUMNS)
    _same_profile(mine, theirs)
    assert mine.state("amount").n == kept.num_rows
    assert rule.last_report.equals(report)
    # the filter changes what is profiled (otherwise this test could not fail)
    assert Profile.from_data(events, COLUMNS).state("amount").n == events.num_rows


def test_profile_update_with_consent_batch_by_batch():
    events = _events(1)
    kept, _ = _kept(events)
    rule = _rule()
    mine = Profile(Profile.from_data(events, COLUMNS).kinds)
    for batch in events.to_batches(max_chunksize=700):
        mine.update(batch, consent=rule, customer="customer", time="time")
    _same_profile(mine, Profile.from_data(kept, COLUMNS), moments_rel=1e-12)


def test_drift_with_consent_equals_drift_of_consented_rows():
    ref, cur = _events(2), _events(3, shift=0.3)
    rule = _rule()
    mine = drift(ref, cur, columns=COLUMNS, consent=rule, customer="customer", time="time")
    theirs = drift(_kept(ref).data, _kept(cur).data, columns=COLUMNS)
    assert mine.equals(theirs)
    assert rule.last_report.equals(_kept(cur).report)
    assert not mine.equals(drift(ref, cur, columns=COLUMNS))


def test_consent_needs_a_filter_and_raw_data():
    events = _events(4)
    with pytest.raises(InputError, match="ConsentFilter"):
        Profile.from_data(events, COLUMNS, consent=_consents(), customer="customer")
    with pytest.raises(InputError, match="customer="):
        Profile.from_data(events, COLUMNS, consent=_rule())
    profile = Profile.from_data(events, COLUMNS)
    with pytest.raises(InputError, match="already built"):
        drift(profile, events, consent=_rule(), customer="customer", time="time")
