"""The single decision of ``Policy.decide_one`` as a C function (a Numba ``cfunc``), for the
compiled server object in :mod:`.serve_native`.

Why a C entry point: calling the ``njit`` kernel from Python cost ~3 us of argument boxing and
dispatch under the GIL, of a ~4 us call. The server calls this function through its address
with the GIL released (~0.3 us of a call now holds it); the arithmetic is
:func:`.decide.decide_single` itself, so ``decide_one`` gives exactly the decisions of
``decide`` (tests compare them).
"""
from numba import carray, cfunc, types

from .decide import decide_single

_F64 = types.CPointer(types.float64)

#: ``(x, elig, theta, L_inv, arm_params, K, d, scale, kind, epsilon, seed, row, draws, prop)``
#: -> arm (``-1`` none eligible, ``-2`` non-finite ``x``); ``prop[0]`` receives the propensity.
SIGNATURE = types.int64(_F64, types.CPointer(types.uint8), _F64, _F64, _F64, types.int64,
                        types.int64, types.float64, types.int64, types.float64, types.uint64,
                        types.int64, types.int64, _F64)


@cfunc(SIGNATURE, nopython=True, cache=True)
def _decide_single_c(x, elig, theta, L_inv, arm_params, K, d, scale, kind, epsilon, seed, row,
                     draws, prop):
    arm, p = decide_single(carray(x, (d,)), carray(elig, (K,)), carray(theta, (K, d)),
                           carray(L_inv, (K, d, d)), carray(arm_params, (8, K)), scale, kind,
                           epsilon, seed, row, draws)
    prop[0] = p
    return arm


#: The address the server calls (a plain C function; needs no GIL).
DECIDE_SINGLE_ADDRESS = _decide_single_c.address
