# The fused linear model worker, textually included by native.pyx (it shares the module's
# block counter, ``_post_row`` and the C imports; see native.pyx's docstring).

def linear_worker(tuple cols, const double[:, ::1] coef, const double[::1] intercept, int mode,
                  double[:, ::1] out, int64_t[::1] next_block):
    """One worker of the fused linear model: ``z[k, i] = b[k] + sum_j w[k, j] x_j[i]``, then
    the transform ``mode`` over the ``K`` outputs, for blocks of rows.

    ``cols``: F contiguous float64 columns of n rows (no ``n x F`` matrix is built); ``out``
    ``(n_out, n)``, output-major (each score column contiguous). The block's running sums stay
    in L1 while each column's slice streams through once.
    """
    cdef Py_ssize_t n_f = len(cols), n_k = coef.shape[0], n = out.shape[1]
    cdef Py_ssize_t n_blocks = (n + _LINEAR_BLOCK - 1) // _LINEAR_BLOCK
    cdef long long* counter = <long long*> &next_block[0]
    cdef Py_ssize_t b, lo, m, kk, j, i
    cdef const double[::1] col
    cdef double w
    cdef const double* c
    cdef double* a
    if n == 0:
        return
    cdef const double** ptrs = <const double**> malloc(max(n_f, 1) * sizeof(double*))
    cdef double* acc = <double*> malloc(n_k * _LINEAR_BLOCK * sizeof(double))
    if ptrs == NULL or acc == NULL:
        free(ptrs)
        free(acc)
        raise MemoryError()
    for j in range(n_f):
        col = cols[j]
        ptrs[j] = &col[0]
    with nogil:
        b = fe_fetch_add(counter, 1)
        while b < n_blocks:
            lo = b * _LINEAR_BLOCK
            m = min(n, lo + _LINEAR_BLOCK) - lo
            for kk in range(n_k):
                a = acc + kk * _LINEAR_BLOCK
                for i in range(m):
                    a[i] = intercept[kk]
                for j in range(n_f):
                    w = coef[kk, j]
                    c = ptrs[j] + lo
                    for i in range(m):
                        a[i] = a[i] + w * c[i]
            for i in range(m):
                _post_row(acc + i, _LINEAR_BLOCK, &out[0, lo + i], n, n_k, mode, 1.0)
            b = fe_fetch_add(counter, 1)
    free(ptrs)
    free(acc)
