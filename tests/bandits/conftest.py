import pytest


@pytest.fixture
def parallel_always(monkeypatch):
    """Let small test batches really run on the requested threads (by default batches under
    BANDIT_PARALLEL_MIN_ROWS run on one), so 1-vs-2-thread comparisons test something."""
    from fastengage.bandits import policies

    monkeypatch.setattr(policies, "BANDIT_PARALLEL_MIN_ROWS", 0)
