# The digamma and trigamma of kernels/clv/special.py for the compiled-ahead CLV kernels, included
# (``include "special_native.pxi"``) by native.pyx and spend_native.pyx: one source, a static
# inlinable copy in each module.
from libc.math cimport NAN, log


cdef double digamma(double x) noexcept nogil:
    """psi(x) for x > 0: upward recurrence to x >= 10, then the asymptotic series."""
    if not x > 0.0:
        return NAN
    cdef double result = 0.0, inv, inv2
    while x < 10.0:
        result -= 1.0 / x
        x += 1.0
    inv = 1.0 / x
    inv2 = inv * inv
    result += log(x) - 0.5 * inv - inv2 * (
        1.0 / 12 - inv2 * (1.0 / 120 - inv2 * (1.0 / 252 - inv2 * (1.0 / 240 - inv2 * (1.0 / 132))))
    )
    return result


cdef double trigamma(double x) noexcept nogil:
    """psi'(x) for x > 0: upward recurrence to x >= 10, then the asymptotic series."""
    if not x > 0.0:
        return NAN
    cdef double result = 0.0, inv, inv2
    while x < 10.0:
        result += 1.0 / (x * x)
        x += 1.0
    inv = 1.0 / x
    inv2 = inv * inv
    result += inv + 0.5 * inv2 + inv * inv2 * (
        1.0 / 6 - inv2 * (1.0 / 30 - inv2 * (1.0 / 42 - inv2 * (1.0 / 30 - inv2 * (
            5.0 / 66 - inv2 * (691.0 / 2730))))))
    return result
