/* HMAC-SHA256 of many short messages with the x86 SHA extensions (SHA-NI).
 *
 * Why this is written here rather than called from OpenSSL (which the portable path in
 * kernels/privacy/keyed_hash.py uses, and which runs the same instructions on this CPU): an id
 * of up to 55 bytes needs exactly two SHA-256 compressions once the HMAC key blocks are
 * absorbed, and OpenSSL's API adds per-call work around each one (a context copy, a call by
 * address, byte-order conversions of the chaining value). More importantly, the rounds
 * instruction has a latency several times its throughput, so one message at a time leaves the
 * SHA unit mostly idle: here two ids are compressed side by side (their round chains are
 * independent), which OpenSSL's one-message API cannot do.
 *
 * The compression is the FIPS 180-4 SHA-256 block function expressed with the SHA-NI
 * instructions the way Intel's white paper ("Intel SHA Extensions", 2013) lays it out: the
 * state lives in two registers (ABEF and CDGH), each _mm_sha256rnds2_epu32 does two rounds,
 * _mm_sha256msg1/msg2 extend the message schedule. It is checked against Python's hmac on every
 * length 0..300, random ids, the RFC 4231 vectors and against the portable path
 * (tests/privacy/test_hmac_native.py).
 *
 * Build guard: the SHA-NI code exists only on x86-64 with GCC >= 4.9 or clang >= 4 (which know
 * the "sha" target attribute); it is compiled for that attribute function by function, so the
 * module itself needs no -msha and runs on every x86-64 CPU. fe_sha_ni_supported() checks the
 * CPU at run time (CPUID leaf 7 EBX bit 29 for SHA, leaf 1 ECX bit 19 for SSE4.1); without the
 * code or the instructions it returns 0 and callers take the portable path. Define
 * FE_NO_SHA_NI to leave the code out.
 */
#ifndef FE_SHA256_NI_H
#define FE_SHA256_NI_H

#include <stdint.h>
#include <string.h>

#if !defined(FE_NO_SHA_NI) && (defined(__x86_64__) || defined(__amd64__)) && \
    ((defined(__clang__) && __clang_major__ >= 4) || \
     (!defined(__clang__) && defined(__GNUC__) && \
      (__GNUC__ > 4 || (__GNUC__ == 4 && __GNUC_MINOR__ >= 9))))
#define FE_HAVE_SHA_NI 1
#else
#define FE_HAVE_SHA_NI 0
#endif

#if FE_HAVE_SHA_NI
#include <cpuid.h>
#include <immintrin.h>

#define FE_SHA_TARGET __attribute__((target("sha,sse4.1")))
#define FE_INLINE static inline __attribute__((always_inline))

static inline int fe_sha_ni_supported(void) {
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 19)))  /* SSE4.1 (implies SSSE3) */
        return 0;
    if (__get_cpuid_max(0, 0) < 7)
        return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b >> 29) & 1;                                        /* SHA */
}

/* The 64 round constants, four per 128-bit lane group (FIPS 180-4 section 4.2.2). */
static const uint32_t FE_SHA256_K[64] __attribute__((aligned(16))) = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

/* A SHA-256 state in the registers the rounds instruction works on. */
typedef struct { __m128i abef, cdgh; } fe_sha_state;

/* Big-endian 32-bit words of 16 message bytes (byte swap within each word). */
FE_SHA_TARGET FE_INLINE __m128i fe_load_be(const uint8_t *p) {
    const __m128i swap = _mm_set_epi8(12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3);
    return _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)p), swap);
}

/* h[0..7] (the standard word order a..h) <-> the ABEF/CDGH register pair. */
FE_SHA_TARGET FE_INLINE fe_sha_state fe_state_from_words(const uint32_t h[8]) {
    __m128i dcba = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)h), 0xB1);  /* CDAB */
    __m128i efgh = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)(h + 4)), 0x1B);
    fe_sha_state s;
    s.abef = _mm_alignr_epi8(dcba, efgh, 8);
    s.cdgh = _mm_blend_epi16(efgh, dcba, 0xF0);
    return s;
}

/* The chaining value as words a..h in two registers: lo = (a, b, c, d), hi = (e, f, g, h). */
FE_SHA_TARGET FE_INLINE void fe_state_to_words(fe_sha_state s, __m128i *lo, __m128i *hi) {
    __m128i feba = _mm_shuffle_epi32(s.abef, 0x1B);
    __m128i dchg = _mm_shuffle_epi32(s.cdgh, 0xB1);
    *lo = _mm_blend_epi16(feba, dchg, 0xF0);
    *hi = _mm_alignr_epi8(dchg, feba, 8);
}

/* Four rounds (2 x rnds2) of quad q with message words w, then the schedule's next quad. */
#define FE_QUAD(S, W, q)                                                                   \
    do {                                                                                  \
        __m128i m_ = _mm_add_epi32(W[(q) & 3],                                            \
                                   _mm_load_si128((const __m128i *)(FE_SHA256_K + 4 * (q)))); \
        S.cdgh = _mm_sha256rnds2_epu32(S.cdgh, S.abef, m_);                               \
        S.abef = _mm_sha256rnds2_epu32(S.abef, S.cdgh, _mm_shuffle_epi32(m_, 0x0E));      \
        if ((q) < 12)                                                                     \
            W[(q) & 3] = _mm_sha256msg2_epu32(                                            \
                _mm_add_epi32(_mm_sha256msg1_epu32(W[(q) & 3], W[((q) + 1) & 3]),         \
                              _mm_alignr_epi8(W[((q) + 3) & 3], W[((q) + 2) & 3], 4)),    \
                W[((q) + 3) & 3]);                                                        \
    } while (0)

/* One compression of the message words w[0..3] (16 words) into s. */
FE_SHA_TARGET FE_INLINE void fe_compress(fe_sha_state *s, __m128i w[4]) {
    fe_sha_state t = *s;
#pragma GCC unroll 16
    for (int q = 0; q < 16; q++)
        FE_QUAD(t, w, q);
    s->abef = _mm_add_epi32(s->abef, t.abef);
    s->cdgh = _mm_add_epi32(s->cdgh, t.cdgh);
}

/* Two independent compressions, interleaved round by round: the rounds instruction's latency
 * of one chain is filled with the other's work. */
FE_SHA_TARGET FE_INLINE void fe_compress2(fe_sha_state *s, __m128i w[4], fe_sha_state *u,
                                          __m128i v[4]) {
    fe_sha_state t = *s, r = *u;
#pragma GCC unroll 16
    for (int q = 0; q < 16; q++) {
        FE_QUAD(t, w, q);
        FE_QUAD(r, v, q);
    }
    s->abef = _mm_add_epi32(s->abef, t.abef);
    s->cdgh = _mm_add_epi32(s->cdgh, t.cdgh);
    u->abef = _mm_add_epi32(u->abef, r.abef);
    u->cdgh = _mm_add_epi32(u->cdgh, r.cdgh);
}

FE_SHA_TARGET FE_INLINE void fe_load_block(__m128i w[4], const uint8_t *block) {
    w[0] = fe_load_be(block);
    w[1] = fe_load_be(block + 16);
    w[2] = fe_load_be(block + 32);
    w[3] = fe_load_be(block + 48);
}

/* The last block(s) of the inner hash: the message tail (< 64 bytes), 0x80, zeros and the bit
 * length of key block + message, big-endian (FIPS 180-4 section 5.1.1). Returns the number of
 * blocks written to buf (1, or 2 when the tail leaves no room for the length). */
FE_INLINE int fe_pad_tail(uint8_t buf[128], const uint8_t *tail, size_t tail_len,
                          uint64_t message_len) {
    uint64_t bits = (64 + message_len) * 8;  /* the key block precedes the message */
    int blocks = tail_len <= 55 ? 1 : 2;
    memset(buf, 0, 64 * blocks);
    memcpy(buf, tail, tail_len);
    buf[tail_len] = 0x80;
    for (int j = 0; j < 8; j++)
        buf[64 * blocks - 1 - j] = (uint8_t)(bits >> (8 * j));
    return blocks;
}

/* The outer hash's one block: the 32-byte inner digest (words a..h, which are its big-endian
 * message words as they are), 0x80, zeros and the bit length 8 * (64 + 32). */
FE_SHA_TARGET FE_INLINE void fe_outer_words(fe_sha_state inner, __m128i w[4]) {
    fe_state_to_words(inner, &w[0], &w[1]);
    w[2] = _mm_set_epi32(0, 0, 0, (int)0x80000000u);
    w[3] = _mm_set_epi32(768, 0, 0, 0);
}

/* The 32-byte digest (big-endian words a..h) of a state. */
FE_SHA_TARGET FE_INLINE void fe_digest(fe_sha_state s, uint8_t out[32]) {
    const __m128i swap = _mm_set_epi8(12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3);
    __m128i lo, hi;
    fe_state_to_words(s, &lo, &hi);
    _mm_storeu_si128((__m128i *)out, _mm_shuffle_epi8(lo, swap));
    _mm_storeu_si128((__m128i *)(out + 16), _mm_shuffle_epi8(hi, swap));
}

/* Inner hash of one message of any length: full blocks straight from the buffer, then the
 * padded tail. */
FE_SHA_TARGET FE_INLINE fe_sha_state fe_inner_any(fe_sha_state inner, const uint8_t *msg,
                                                  uint64_t len) {
    __m128i w[4];
    uint8_t buf[128];
    uint64_t full = len / 64 * 64;
    for (uint64_t pos = 0; pos < full; pos += 64) {
        fe_load_block(w, msg + pos);
        fe_compress(&inner, w);
    }
    int blocks = fe_pad_tail(buf, msg + full, (size_t)(len - full), len);
    for (int b = 0; b < blocks; b++) {
        fe_load_block(w, buf + 64 * b);
        fe_compress(&inner, w);
    }
    return inner;
}

/* Writes the first `length` digest bytes as raw bytes, or as 2 * length lower-case hex
 * characters, at dst. */
FE_SHA_TARGET FE_INLINE void fe_write_token(const uint8_t digest[32], int length, int hex_out,
                                            uint8_t *dst) {
    if (!hex_out) {
        memcpy(dst, digest, (size_t)length);
        return;
    }
    const __m128i digits = _mm_setr_epi8('0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'a',
                                         'b', 'c', 'd', 'e', 'f');
    const __m128i nibble = _mm_set1_epi8(0x0F);
    uint8_t text[64];
    for (int half = 0; half < 2; half++) {
        __m128i bytes = _mm_loadu_si128((const __m128i *)(digest + 16 * half));
        __m128i high = _mm_shuffle_epi8(digits, _mm_and_si128(_mm_srli_epi16(bytes, 4), nibble));
        __m128i low = _mm_shuffle_epi8(digits, _mm_and_si128(bytes, nibble));
        _mm_storeu_si128((__m128i *)(text + 32 * half), _mm_unpacklo_epi8(high, low));
        _mm_storeu_si128((__m128i *)(text + 32 * half + 16), _mm_unpackhi_epi8(high, low));
    }
    memcpy(dst, text, (size_t)(2 * length));
}

/* HMAC-SHA256 of messages [first, last) of an Arrow binary buffer (offsets of type OFF,
 * relative to data). inner_words/outer_words: the chaining values after the key blocks K^ipad
 * and K^opad (words a..h). Tokens go to out + i * width. Pairs of ids up to 55 bytes take the
 * two-way path; the others one at a time. */
#define FE_DEFINE_HMAC_RANGE(NAME, OFF)                                                       \
    FE_SHA_TARGET static inline void NAME(const OFF *offsets, const uint8_t *data, int64_t first,   \
                                   int64_t last, const uint32_t inner_words[8],              \
                                   const uint32_t outer_words[8], int length, int hex_out,   \
                                   uint8_t *out) {                                           \
        const fe_sha_state inner = fe_state_from_words(inner_words);                         \
        const fe_sha_state outer = fe_state_from_words(outer_words);                         \
        const int width = hex_out ? 2 * length : length;                                      \
        uint8_t buf_a[128], buf_b[128], digest[32];                                           \
        __m128i w[4], v[4];                                                                   \
        int64_t i = first;                                                                    \
        while (i < last) {                                                                    \
            int64_t start = offsets[i], len = (int64_t)offsets[i + 1] - start;                \
            if (i + 1 < last && len <= 55) {                                                  \
                int64_t start_b = offsets[i + 1], len_b = (int64_t)offsets[i + 2] - start_b;  \
                if (len_b <= 55) {                                                            \
                    fe_sha_state a = inner, b = inner;                                        \
                    fe_pad_tail(buf_a, data + start, (size_t)len, (uint64_t)len);             \
                    fe_pad_tail(buf_b, data + start_b, (size_t)len_b, (uint64_t)len_b);       \
                    fe_load_block(w, buf_a);                                                  \
                    fe_load_block(v, buf_b);                                                  \
                    fe_compress2(&a, w, &b, v);                                               \
                    fe_outer_words(a, w);                                                     \
                    fe_outer_words(b, v);                                                     \
                    a = outer;                                                                \
                    b = outer;                                                                \
                    fe_compress2(&a, w, &b, v);                                               \
                    fe_digest(a, digest);                                                     \
                    fe_write_token(digest, length, hex_out, out + i * width);                 \
                    fe_digest(b, digest);                                                     \
                    fe_write_token(digest, length, hex_out, out + (i + 1) * width);           \
                    i += 2;                                                                   \
                    continue;                                                                 \
                }                                                                             \
            }                                                                                 \
            fe_sha_state a = fe_inner_any(inner, data + start, (uint64_t)len);                \
            fe_outer_words(a, w);                                                             \
            a = outer;                                                                        \
            fe_compress(&a, w);                                                               \
            fe_digest(a, digest);                                                             \
            fe_write_token(digest, length, hex_out, out + i * width);                         \
            i += 1;                                                                           \
        }                                                                                     \
        memset(buf_a, 0, sizeof buf_a);                                                       \
        memset(buf_b, 0, sizeof buf_b);                                                       \
    }

FE_DEFINE_HMAC_RANGE(fe_hmac_range32, int32_t)
FE_DEFINE_HMAC_RANGE(fe_hmac_range64, int64_t)

/* The chaining value (words a..h) after compressing one 64-byte block into the SHA-256 initial
 * value: the HMAC key states, from K ^ ipad and K ^ opad. */
FE_SHA_TARGET static inline void fe_sha256_key_state(const uint8_t block[64], uint32_t out[8]) {
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    fe_sha_state s = fe_state_from_words(iv);
    __m128i w[4], lo, hi;
    fe_load_block(w, block);
    fe_compress(&s, w);
    fe_state_to_words(s, &lo, &hi);
    _mm_storeu_si128((__m128i *)out, lo);
    _mm_storeu_si128((__m128i *)(out + 4), hi);
}

#else  /* no SHA-NI code: every entry point is a stub, fe_sha_ni_supported() says 0 */

static inline int fe_sha_ni_supported(void) { return 0; }

#define FE_DEFINE_HMAC_STUB(NAME, OFF)                                                         \
    static inline void NAME(const OFF *offsets, const uint8_t *data, int64_t first, int64_t last,    \
                     const uint32_t inner_words[8], const uint32_t outer_words[8], int length, \
                     int hex_out, uint8_t *out) {                                              \
        (void)offsets; (void)data; (void)first; (void)last; (void)inner_words;                 \
        (void)outer_words; (void)length; (void)hex_out; (void)out;                             \
    }
FE_DEFINE_HMAC_STUB(fe_hmac_range32, int32_t)
FE_DEFINE_HMAC_STUB(fe_hmac_range64, int64_t)

static inline void fe_sha256_key_state(const uint8_t block[64], uint32_t out[8]) {
    (void)block;
    memset(out, 0, 32);
}

#endif  /* FE_HAVE_SHA_NI */

#endif  /* FE_SHA256_NI_H */
