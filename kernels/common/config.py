"""Every tunable of the kernels in one place (as in stumpy's ``config`` module).

Numba compilation flags, thread defaults and the size thresholds that choose between code
paths. A threshold may only choose between paths that give bit-identical results; tests check
each such pair.

``NUMBA_DISABLE_JIT=1`` in the environment turns every kernel into plain Python, which is how
coverage of kernel code is measured.
"""
import os

#: Keyword arguments for serial kernels: GIL released, machine code cached next to the module
#: so a new process does not recompile.
NJIT = dict(nogil=True, cache=True, fastmath=False, error_model="numpy")

#: Keyword arguments for kernels whose outer loop is a ``prange``. Only
#: :func:`kernels.common.launch.parallel_kernel` may use them (the one launch rule).
NJIT_PARALLEL = dict(NJIT, parallel=True)


def _env_threads() -> int | None:
    raw = os.environ.get("FASTENGAGE_NUM_THREADS", "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        return None  # a bad variable must not break import; the launch rule uses all cores
    return value if value > 0 else None


#: Default number of worker threads for parallel kernels: ``FASTENGAGE_NUM_THREADS`` when set
#: to a positive integer, otherwise Numba's own default (all cores). ``n_threads=`` on an entry
#: point overrides it for that call.
DEFAULT_THREADS = _env_threads()


# --- privacy (keyed hashing of id columns) ---------------------------------------------------
#: Ids of one call are split into this many equal blocks, hashed in parallel; each id is
#: independent, so the result does not depend on it. 64 blocks balance 2-16 threads.
PRIVACY_HASH_CHUNKS = 64

# --- monitor (drift profiles and model quality, issue #13) -------------------------------------
#: Profile.from_data(mode="auto") keeps every value of a numeric column (exact statistics) up to
#: this many values, then turns that column into a quantile sketch.
MONITOR_EXACT_LIMIT = 2_000_000
#: Capacity of one level of the quantile sketch. The guaranteed rank error after n values is at
#: most n * (ceil(log2(n / k)) + 1) / k (each profile reports its own, usually far smaller, bound).
MONITOR_SKETCH_K = 4096
#: PSI and Jensen-Shannon use this many quantile bins of the reference (numeric columns).
MONITOR_PSI_BINS = 10
#: Empty bins/categories count as this proportion in PSI (as evidently does); 0 would make it inf.
MONITOR_PSI_EPS = 1e-4
#: Default drift-flag thresholds (documented in the README): PSI >= 0.2 is the usual "major
#: shift"; like evidently, small references (<= 1000 values) use the test p-values and large ones
#: the normalised Wasserstein distance (numeric) or Jensen-Shannon distance (categorical).
MONITOR_PSI_THRESHOLD = 0.2
MONITOR_PVALUE_THRESHOLD = 0.05
MONITOR_WASSERSTEIN_THRESHOLD = 0.1
MONITOR_JS_THRESHOLD = 0.1
MONITOR_SMALL_SAMPLE = 1000
#: monitor.drift(ks_method="auto"): exact KS p-values up to this many values per side, as
#: scipy.stats.ks_2samp's "auto" (its MAX_AUTO_N) and so evidently.
MONITOR_KS_EXACT_MAX_N = 10_000
#: A column's null rate moving by more than this (absolute) flags drift as well.
MONITOR_NULL_RATE_THRESHOLD = 0.1
#: Drift of raw numeric columns without sorting them (kernels/monitor/buckets.py): values go
#: into buckets of a monotone map estimated from MONITOR_BUCKET_CELLS quantiles of a sample of
#: MONITOR_BUCKET_SAMPLE values per side, about sqrt(n) / 16 values per side and bucket (at most
#: MONITOR_BUCKET_ROWS),
#: at most MONITOR_BUCKET_MAX buckets (ids are uint16, one more id marks NaN).
MONITOR_BUCKET_CELLS = 256
MONITOR_BUCKET_SAMPLE = 4096
MONITOR_BUCKET_ROWS = 64
MONITOR_BUCKET_MAX = 32768
#: The bucket map is a lookup in this many equal steps over [min, max], each step owning
#: buckets in proportion to its share of the sample (very heavy tails crowd few steps: those
#: columns end up sorted, by the gather limit below).
MONITOR_BUCKET_GRID = 4096
#: A column whose buckets needing their values in order hold more than this share of its values
#: (few distinct values, a constant column) is sorted instead.
MONITOR_BUCKET_GATHER_LIMIT = 0.25
#: Positions listed per block by the drift kernel's gather (kernels/monitor/buckets.py); a
#: layout constant that changes no result.
MONITOR_GATHER_BLOCK = 4096
#: A drift column goes on the equal-cell bucket map with this many cells a bucket when the sample
#: puts at most MONITOR_GRID_CELL_FILL times the bucket's target count into any cell; else
#: (crowded regions, heavy tails) on the step map. Both give the same results up to
#: floating-point rounding; only the bucket layout (so the share of values gathered) differs.
MONITOR_GRID_CELLS_PER_BUCKET = 4
MONITOR_GRID_CELL_FILL = 2

# --- bandits (next-best-action policies and off-policy evaluation, issue #12) ------------------
#: Rows per parallel task of a batch decision (scratch allocated once per task); large enough
#: that the few rows per arm whose UCB width is needed make long SIMD loops, small enough that
#: the task's means and widths (K x chunk each) stay in L2 cache. Every row draws from its own
#: (seed, row) stream and its arithmetic does not depend on the block: results are the same.
BANDIT_DECIDE_CHUNK = 1024
#: Fewer rows than this (decide_one, the few rows of an arm whose width a block needs) are
#: scored row by row; more, feature by feature over contiguous rows (SIMD). Same bits either way.
BANDIT_ROWWISE_BELOW = 8
#: Relative slack of the UCB width bounds that let a decision skip widths (kernels/bandits/
#: decide_core.h ``fe_may_win``): an arm is skipped only if its best possible score is below the top
#: arm's least possible score by this much of their magnitudes. A correctness margin (orders of
#: magnitude above float64 rounding), not a tuning knob: any value in [1e-13, 1e-6] gives the same
#: decisions, larger ones only compute more widths.
BANDIT_BOUND_SLACK = 1e-12
#: Rows per batch of a batch decision at the API. The kernel reads float64 feature columns in
#: place; a batch bounds the memory of columns that must be converted (rows x features float64,
#: 40 MiB at 20 features) and of an eligibility mask, and each batch is one threaded launch
#: (~0.2 ms to start and join its threads).
BANDIT_DECIDE_BATCH = 262_144
#: A policy update sums the rows of one arm in tasks of at most this many rows, then adds the
#: task sums in task order: the statistics do not depend on the thread count.
BANDIT_ROWS_PER_TASK = 65_536
#: Default number of extra Thompson draws per row behind a Thompson-sampling propensity (the
#: share of the chosen arm among the decision's draw plus these draws).
BANDIT_TS_PROPENSITY_DRAWS = 100
#: decide_one releases the GIL around a decision of at least this many multiply-adds
#: (serve_native.decision_work: 10 arms x 20 features LinUCB 2,300; 20 x 50 26,500; 50 x 50
#: 66,250; Thompson sampling always, its propensity draws alone cost ~4-80 us). Below it,
#: handing the GIL to a waiting thread and back costs more than the decision. What a hand-over
#: costs moves with the VM's state (a sleeping thread's wake-up), so this sits between the
#: crossovers measured (``python bench/gil_handoff.py``, two threads against one, released /
#: held; bench/RESULTS.md): session 10 (load 0.7-0.9) 20 x 50 1.19x / 0.99x, 50 x 50 1.70x;
#: session 11 (load 1.0-1.5) 20 x 50 0.69x / 0.98x, 50 x 50 0.91x / 0.96x, 60 x 80 (199,200)
#: 1.45x / 0.97x. Either way the decisions are the same.
BANDIT_SERVE_NOGIL_WORK = 50_000
#: decide_rows releases the GIL for a micro-batch of at least this many multiply-adds (rows x
#: decision_work). Its Python part is longer (~1.3 us: the arm ids, the outputs), so the batch
#: must be longer too: 10 x 20 at 64 rows (147,200) released 0.84x / held 0.88x, 128 rows
#: (294,400) 1.23x / 0.72x, 256 rows 1.59x / 0.83x; 20 x 50 at 16 rows (424,000) 1.04x / 0.91x.
BANDIT_SERVE_NOGIL_ROWS_WORK = 250_000
#: Rows per parallel task of the off-policy evaluation passes (per-row terms, no reductions).
BANDIT_OPE_CHUNK = 16_384


# -- CLV ----------------------------------------------------------------------------------------
#: Below this many rows (patterns, customers) a CLV pattern kernel runs on one thread: thread
#: start-up costs more than the work (measured: 0.4 ms serial vs 3.5 ms on two busy cores for the
#: 1,016 CDNOW patterns; 5.3 ms serial vs 2.8 ms parallel for 182k patterns). Both variants give
#: bit-identical results, so this threshold changes speed only.
CLV_PARALLEL_MIN_ROWS = 100_000
#: Likelihood sums over patterns are taken in chunks of this many rows (one partial sum per
#: chunk, the chunks then added in order), so a fit is bit-identical for any thread count and
#: either launch path. Changing it changes the last bits of fits, not their accuracy.
CLV_REDUCE_CHUNK = 2048
#: Above this many customers, predictions are computed once per distinct pattern and scattered.
CLV_PREDICT_COMPRESS_ABOVE = 4096
#: Whole-number (x, t_x, T) data whose T stays below this uses the dense pattern path (an int32
#: slot array over the t_x <= T triangle, 2 MB at most) instead of the general hash.
CLV_INT_PATTERN_MAX_Y = 1024
#: Pareto/NBD: the hypergeometric term S = 2F1(1, e; f; z) is summed directly for z up to this
#: value (at most ~60 terms) and by its connection to 1 - z above it (a few terms, where the
#: direct series needs ~log(eps)/log(z)); both are accurate to ~1e-14.
CLV_PARETO_NEAR_ONE_Z = 0.5
#: The connection formula is singular at integer g = f - e; closer than this it is not used
#: (the direct series, then quadrature, take over). Speed only: every path is accurate.
CLV_PARETO_INTEGER_GAP = 0.02
#: Above CLV_PARETO_NEAR_ONE_Z the direct series is tried first with this many terms (it
#: converges that fast when f - e is large); only then the connection formula.
CLV_PARETO_DIRECT_TERMS = 64
#: Batches (decisions, updates, OPE rounds) smaller than this run on one thread: waking worker
#: threads costs more than the work (16 ms per launch measured on a loaded 2-core machine with
#: OpenMP's active wait). Results are per row or per fixed task, so they do not change.
BANDIT_PARALLEL_MIN_ROWS = 20_000
#: Rows of one bandit-fit task sorted by arm at a time (their features gathered into a local
#: buffer that stays in L1/L2). A layout constant: the Gram sums add each entry's rows in input
#: order whatever it is, on any thread count.
BANDIT_SORT_BLOCK = 256
#: Rows of a logged arm column one worker maps to arm codes at a time (a few ns a row: below
#: two chunks a column is mapped on the calling thread alone).
BANDIT_ARM_CHUNK = 131_072
#: Distinct strings one block of rows may hold in the segment-column encoder of dp_report
#: (kernels/privacy/segments.py); past it the column is dictionary-encoded by Arrow instead.
PRIVACY_SMALL_DICTIONARY = 256
#: Rows below which a segment column goes straight to Arrow's dictionary encoding.
PRIVACY_SMALL_DICTIONARY_MIN_ROWS = 50_000

# --- persistence (bounded loads of model/state files, issue #10) -------------------------------
#: Largest ``meta.json`` a bundle may declare; anything larger is refused before it is read.
BUNDLE_META_MAX_BYTES = 4 << 20
#: Largest ``.npy`` header accepted (NumPy writes < 200 bytes for any real array).
BUNDLE_NPY_HEADER_MAX_BYTES = 1 << 16

# --- recommend (issues #9, #10) ---------------------------------------------------------------
#: Customers per task of the batch top-n and similar-items kernels (claimed dynamically by the
#: workers: pruning makes customers' costs very uneven). Each customer is scored on one thread,
#: so the result does not depend on it.
MF_SERVE_CHUNK = 64
#: Requests for at most this many customers run on the calling thread only (no parallel launch):
#: what a service answering single customers from many threads wants. Same results either way.
RECOMMEND_SERIAL_MAX = 16

# --- features: customer profiles and training sets (issue #15.1, #15.2) -----------------------
#: Customers per parallel task of the profile fold; each task allocates its scratch once, sized
#: by its longest customer. Each customer is folded on one thread, so results do not depend on it.
PROFILE_BLOCK = 512
#: Largest number of distinct values of a ``channel=`` column (two output columns per value).
PROFILE_MAX_CHANNELS = 64
#: Row chunks of the counting sort by customer are at most this many (one count per customer
#: and chunk); the sort is stable, so the order of rows does not depend on it.
PROFILE_SORT_CHUNKS = 16

# --- features: rfm() and profile() id codes and small inputs (issues #15.5, #11) ---------------
#: Integer customer ids whose range is at most this many slots past the row count are their
#: own codes (``id - min``): no hashing, and codes already ascend with the ids.
FEATURES_DENSE_SLACK = 1024
#: Largest id range indexed directly (rfm records are 64 bytes: 2**24 of them are 1 GiB).
FEATURES_DENSE_MAX_RANGE = 1 << 24
#: rfm() on an in-memory table with fewer rows folds them on the calling thread in one serial
#: kernel (no partitioning, no parallel kernel to compile on a first call); same result.
RFM_SERIAL_MAX_ROWS = 1 << 17
#: rfm() without an order column folds every row straight into its customer's record, without
#: partitioning the rows (kernels/features/fewids.py), when the ids are few: a sample suggests at
#: most this many (the estimate is low for skewed ids: 26k for 50k customers at 100 rows each,
#: 62k for 250k at 20 rows, where the partitions were faster) ...
RFM_FEW_IDS_MAX_ESTIMATE = 40_000
#: ... and the rows are at least this many times the estimate. Same records either way.
RFM_FEW_IDS_MIN_ROWS_PER_ID = 32
#: A thread that meets more ids than this gives up, and the partitioned path runs instead.
RFM_FEW_IDS_MAX_IDS = 1 << 17
#: ... and the path is only taken when that many ids' tables, records and day bitmaps take at
#: most this many bytes a thread (day bitmaps grow with the span of the times).
RFM_FEW_IDS_MAX_BYTES = 64 << 20
#: Rows a thread claims at a time (the blocks are claimed dynamically, balancing busy cores).
RFM_FEW_IDS_BLOCK_ROWS = 1 << 16
#: Rows between asking for a row's cache lines and folding it (software pipelining).
RFM_FEW_IDS_PREFETCH_ROWS = 8
#: Parts of dp_report's bounding pass (a power of two): with a per-customer cap each part owns
#: the customers whose code is equal to it modulo the part count; counts and sums are integers,
#: so the result is the same for any part and thread count. 8 parts balance 2-8 threads.
PRIVACY_AGGREGATE_PARTS = 8

# --- features: profile fold compiled ahead of time (issue #15.5, session 8) ---------------------
#: The profile fold counts distinct items and lines per category through a per-worker table
#: indexed by code (8 bytes a code) when the column has at most this many distinct values, else
#: by sorting each customer's codes; the counts are the same either way.
PROFILE_STAMP_MAX_CODES = 1 << 20

# --- features: rfm() read-out and scores (issue #15.5, session 8) -------------------------------
#: Records per chunk of rfm's read-out (``fold_native.finalize_*``): 4 MiB of records, enough
#: chunks for two threads to share 5M customers evenly; the output does not depend on it.
RFM_READOUT_CHUNK = 1 << 16
#: Integer scores (recency days, frequency) are ranked by counting when the largest value is
#: at most this (one count a value), else by selection; the scores are the same.
RFM_COUNTING_MAX_VALUE = 1 << 22

# --- monitor: drift kernel compiled ahead of time (issues #11, #13, session 8) ------------------
#: Values per block of the drift kernel's id + tally pass (drift_native.pyx): a block's bucket
#: ids are computed first (vectorised), then tallied while the block's values and ids are still
#: in L1 cache (1024 values: 8 KiB + 2 KiB). The results do not depend on it.
MONITOR_TALLY_BLOCK = 1024
