# Post-transforms of raw scores, shared by every scoring kernel (textually included by
# native.pyx: one arithmetic for every caller, so a row's result never depends on the kernel).

# Post-transforms of raw scores (the enum for the kernels, the same numbers for Python below)
cdef enum:
    _NONE = 0
    _LOGISTIC = 1
    _SOFTMAX = 2
    _SOFTMAX_ZERO = 3
    _SIGMOID = 4
    _EXP = 5
    _PAIR_LOGISTIC = 10
    _PAIR_NEG = 11
    _PAIR_ONE_MINUS = 12
    _PAIR_SIGMOID = 13
    _PAIR_PLAIN_LOGISTIC = 14
    _RAW_ONLY = -1

NONE = _NONE
LOGISTIC = _LOGISTIC          # ONNX Runtime logistic ``v = 1/(1+exp(-|s|)); s < 0 ? 1-v : v``
SOFTMAX = _SOFTMAX            # max-shifted softmax over the row
SOFTMAX_ZERO = _SOFTMAX_ZERO  # ONNX SOFTMAX_ZERO: exact zeros stay zero
SIGMOID = _SIGMOID            # 1 / (1 + exp(-scale * s)) per column (LightGBM; linear: scale 1)
EXP = _EXP                    # LightGBM poisson/gamma/tweedie
PAIR_LOGISTIC = _PAIR_LOGISTIC      # one score s -> [logistic(-s), logistic(s)] (ONNX binary)
PAIR_NEG = _PAIR_NEG                # s -> [-s, s]
PAIR_ONE_MINUS = _PAIR_ONE_MINUS    # s -> [1 - s, s] (ONNX binary, all weights positive)
PAIR_SIGMOID = _PAIR_SIGMOID        # p = 1/(1+exp(-scale s)) -> [1 - p, p] (LightGBM binary)
PAIR_PLAIN_LOGISTIC = _PAIR_PLAIN_LOGISTIC  # z -> [1/(1+exp(z)), 1/(1+exp(-z))] (linear 2-class)
#: Tree workers only: sums without averaging, base values or a transform.
RAW_ONLY = _RAW_ONLY

cdef inline acc_t _exp(acc_t v) noexcept nogil:
    if acc_t is float:
        return expf(v)
    else:
        return exp(v)


cdef inline acc_t _logistic(acc_t s) noexcept nogil:
    # (the magnitude cast back to acc_t, or Cython would pick the double _exp for float32)
    cdef acc_t mag = <acc_t> fabs(s)
    cdef acc_t v = (<acc_t> 1) / ((<acc_t> 1) + _exp(-mag))
    return (<acc_t> 1) - v if s < 0 else v


cdef void _post_row(acc_t* src, Py_ssize_t ss, acc_t* dst, Py_ssize_t ds, Py_ssize_t k,
                    int mode, acc_t scale) noexcept nogil:
    """Transform ``mode`` of one row: ``k`` scores at ``src[j * ss]`` into ``dst[j * ds]``
    (``dst`` may be ``src``). The same arithmetic for every caller, so a row's result never
    depends on which kernel or block computed it."""
    cdef Py_ssize_t j
    cdef acc_t one = 1, m, s, e, total, p
    if mode == _NONE:
        for j in range(k):
            dst[j * ds] = src[j * ss]
    elif mode == _LOGISTIC:
        for j in range(k):
            dst[j * ds] = _logistic(src[j * ss])
    elif mode == _SOFTMAX or mode == _SOFTMAX_ZERO:
        m = src[0]
        for j in range(1, k):
            if src[j * ss] > m:
                m = src[j * ss]
        total = 0
        for j in range(k):
            s = src[j * ss]
            if mode == _SOFTMAX_ZERO and s == 0:
                dst[j * ds] = s * _exp(-m)
            else:
                e = _exp(s - m)
                dst[j * ds] = e
                total = total + e
        for j in range(k):
            dst[j * ds] = dst[j * ds] / total
    elif mode == _SIGMOID:
        for j in range(k):
            dst[j * ds] = one / (one + _exp(-scale * src[j * ss]))
    elif mode == _EXP:
        for j in range(k):
            dst[j * ds] = _exp(src[j * ss])
    else:
        s = src[0]
        if mode == _PAIR_LOGISTIC:
            dst[0] = _logistic(-s)
            dst[ds] = _logistic(s)
        elif mode == _PAIR_NEG:
            dst[0] = -s
            dst[ds] = s
        elif mode == _PAIR_ONE_MINUS:
            dst[0] = one - s
            dst[ds] = s
        elif mode == _PAIR_PLAIN_LOGISTIC:
            dst[0] = one / (one + _exp(s))
            dst[ds] = one / (one + _exp(-s))
        else:  # PAIR_SIGMOID
            p = one / (one + _exp(-scale * s))
            dst[0] = one - p
            dst[ds] = p
