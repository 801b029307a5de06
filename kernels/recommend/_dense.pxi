# Shared by the compiled recommend kernels (textually included: inline helpers cost no call).

cdef extern from "../common/atomic.h" nogil:
    long long fe_fetch_add(long long* p, long long v)


cdef inline floating _dot(const floating* a, const floating* b, Py_ssize_t f) noexcept nogil:
    # eight partial sums in a fixed order: vectorisable without fast-math, same bits every time
    cdef floating acc[8]
    cdef Py_ssize_t k, t, f8 = f - f % 8
    for t in range(8):
        acc[t] = 0
    for k in range(0, f8, 8):
        for t in range(8):
            acc[t] += a[k + t] * b[k + t]
    cdef floating s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
    for k in range(f8, f):
        s += a[k] * b[k]
    return s
