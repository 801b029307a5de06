"""RFM of a whole in-memory table whose customers are few against its rows (many rows each):
one pass that folds every row straight into its customer's record, without partitioning.

At 100 rows per customer, 5M rows hold 50k customers: their records, day bitmaps and a hash
table fit in the caches, so scattering the rows into id-range partitions first (``hashed.py``
then ``oneshot.fold``: every row written and read twice more) costs more than it saves. Here
each thread takes blocks of rows, numbers the ids it meets in an open-addressing table of its
own (the record holds the id's key words: equal words mean equal ids, exactly as in
``hashed.py``) and folds each row into that record: the money as exact fixed point, first and
last purchase, row counts, and one bit per purchase day.

Each thread then sorts its records by id, and the sorted runs are merged, the records of one
id added up (money sums are integer additions, the rest min, max, sums and bitwise or: exact
whatever the order), numbered in ascending id order and written as ``rfm.STATE_DTYPE``
records: the same for any thread count and block size, and the same as the partitioned
path's (tests compare them bit for bit). At 100 rows a customer over 5M rows this takes
~0.10 s on 2 threads where the partitions took ~0.20 s (scatter 0.09, numbering 0.055, fold
0.057).

Only without an order column: distinct orders need the grouping of ``oneshot.fold``.

The loops are compiled ahead of time (``fewids_fold.h`` through ``fewids_native.pyx``: no JIT
compilation on a first call, #11); this module holds the plan.
"""
import numpy as np

from ..common.config import (RFM_FEW_IDS_BLOCK_ROWS, RFM_FEW_IDS_MAX_BYTES,
                             RFM_FEW_IDS_MAX_ESTIMATE, RFM_FEW_IDS_MAX_IDS,
                             RFM_FEW_IDS_MIN_ROWS_PER_ID, RFM_FEW_IDS_PREFETCH_ROWS)
from ..common.launch import resolve_threads, run_threaded
from . import fewids_native as _native
from .rfm import STATE_DTYPE

#: A thread's record of one id is one 64-byte row of uint64 words: the id's key words, first
#: and last purchase, the fixed-point money, and the two row counts (``fewids_fold.h``).
RECORD_WORDS = 8
#: Least room for ids a thread's state starts with (a power of two).
MIN_ROOM = 1024


def takes(n_rows: int, estimated_ids: float, words: int) -> bool:
    """Whether :func:`fold` is the faster way for ``n_rows`` rows of about ``estimated_ids``
    distinct ids (``hashed.estimated_ids``) with day bitmaps of ``words`` words."""
    return (estimated_ids <= RFM_FEW_IDS_MAX_ESTIMATE
            and n_rows >= RFM_FEW_IDS_MIN_ROWS_PER_ID * estimated_ids
            and _bytes_per_id(words) * RFM_FEW_IDS_MAX_IDS <= RFM_FEW_IDS_MAX_BYTES)


def _bytes_per_id(words: int) -> int:
    # two table slots, the record, the day bitmap
    return 2 * 8 + RECORD_WORDS * 8 + words * 8


def fold(keys0, keys1, two_words, signed,  # IN  id key words (as hashed.partition takes them)
         times, amounts,                   # IN  int64 µs UTC, float64
         limit_us, exclude_returns,        # IN  as oneshot.fold
         first_day, words,                 # IN  oneshot.day_words(min time, max time)
         estimated_ids,                    # IN  hashed.estimated_ids (sizes the first tables)
         n_threads=None):
    """RFM records of every id, in ascending id order, without partitioning the rows.

    Returns (state, ids0, ids1, rows after the cut, return rows), which is what
    ``hashed.encode_partitions`` then ``oneshot.fold`` give for the same rows; or None as soon
    as a thread meets more than ``RFM_FEW_IDS_MAX_IDS`` ids (the estimate was far too low:
    the caller takes the partitioned path instead, having lost a fraction of a pass).
    """
    keys0, keys1 = np.ascontiguousarray(keys0, np.uint64), np.ascontiguousarray(keys1, np.uint64)
    n = keys0.shape[0]
    block_rows = RFM_FEW_IDS_BLOCK_ROWS
    n_blocks = max(1, -(-n // block_rows))
    workers = min(resolve_threads(n_threads), n_blocks)
    # the tables start with room for twice the estimate (it is low for skewed ids)
    room = MIN_ROOM
    while room < min(2 * int(estimated_ids), RFM_FEW_IDS_MAX_IDS):
        room *= 2
    two_words, signed = bool(two_words), bool(signed)
    times = np.ascontiguousarray(times, np.int64)
    amounts = np.ascontiguousarray(amounts, np.float64)
    next_block = np.zeros(1, np.int64)
    gave_up = np.zeros(1, np.int64)
    states = []
    run_threaded(lambda: states.append(_native.fold_worker(
        keys0, keys1, two_words, times, amounts, int(limit_us), bool(exclude_returns),
        int(first_day), int(words), block_rows, room, RFM_FEW_IDS_MAX_IDS,
        RFM_FEW_IDS_PREFETCH_ROWS, next_block, gave_up)), workers)
    if gave_up[0] or any(s is None for s in states):
        return None
    m = sum(s.n_ids for s in states)
    state = np.empty(m, STATE_DTYPE)
    ids0 = np.empty(m, np.uint64)
    ids1 = np.empty(m if two_words else 0, np.uint64)
    d = _native.merge(states, int(words), two_words, signed, state.view(np.uint8), ids0, ids1)
    n_after = sum(s.rows[0] for s in states)
    n_returns = sum(s.rows[1] for s in states)
    return state[:d], ids0[:d], ids1[:d] if two_words else ids1, n_after, n_returns
