"""Dynamic scheduling of row loops with very uneven row costs (the ALS half-steps).

Numba's ``prange`` splits its iteration space into one equal slice per thread (static
scheduling). On implicit feedback the rows have power-law lengths, and on a shared machine one
worker may be descheduled for a while, so a static split leaves a thread idle at the end of every
half-step. The kernels here give OpenMP's ``schedule(dynamic)`` by hand:

1. :func:`cost_chunks` (compiled ahead of time in :mod:`kernels.common.chunks`) cuts the rows
   into contiguous chunks of about equal cost (``nnz + row_cost`` per row) and orders them by
   decreasing cost, so a chunk holding one giant row (a best-selling item) starts first instead
   of finishing last;
2. a Numba kernel runs ``prange(n_workers)`` (``n_workers`` passed in from the launch: calling
   ``numba.get_num_threads()`` inside a kernel would stop Numba caching it), a Cython kernel
   runs its worker on ``n_workers`` threads (``launch.run_threaded``), and every worker claims
   the next chunk with an atomic fetch-and-add (:func:`fetch_add`) until none are left.
"""
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from .chunks import cost_chunks  # noqa: F401  (re-exported: the plan of every chunked kernel)

#: Chunks per worker: enough that the last chunks to finish are short.
CHUNKS_PER_WORKER = 48


def fetch_add(counter, value):
    """Atomically ``old = counter[0]; counter[0] += value``; returns ``old``.

    ``counter`` is a one-dimensional int64 array shared by the workers of a parallel region.
    Compiled code does an atomic add; this Python body is what runs with ``NUMBA_DISABLE_JIT``
    (where ``prange`` is a plain, serial ``range``).
    """
    old = counter[0]
    counter[0] += value
    return old


@intrinsic
def _atomic_add(typingctx, counter, value):
    if not (isinstance(counter, types.Array) and counter.dtype == types.int64
            and isinstance(value, types.Integer)):
        return None
    sig = types.int64(counter, value)

    def codegen(context, builder, signature, args):
        arr = context.make_array(signature.args[0])(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, signature.args[0], arr,
                                       [ir.Constant(ir.IntType(64), 0)])
        val = context.cast(builder, args[1], signature.args[1], types.int64)
        return builder.atomic_rmw("add", ptr, val, "monotonic")

    return sig, codegen


@overload(fetch_add)
def _fetch_add_compiled(counter, value):
    def impl(counter, value):
        return _atomic_add(counter, value)
    return impl
