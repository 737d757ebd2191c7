// The structural scan behind the CSV reader: finds every byte that can end a field (delimiter,
// quote, LF, CR) 64 bytes at a time with SSE2 (plain C elsewhere), so the parser walks a list of
// positions instead of testing every byte.
#include "cscan.h"

#if defined(__SSE2__)
#include <emmintrin.h>

static inline uint64_t specials64(const uint8_t *p, __m128i d, __m128i q, __m128i lf, __m128i cr) {
    uint64_t mask = 0;
    for (int j = 0; j < 4; j++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(p + 16 * j));
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, d), _mm_cmpeq_epi8(v, q)),
                                   _mm_or_si128(_mm_cmpeq_epi8(v, lf), _mm_cmpeq_epi8(v, cr)));
        mask |= (uint64_t)(uint16_t)_mm_movemask_epi8(hit) << (16 * j);
    }
    return mask;
}
#endif

size_t cscan_index_specials(const uint8_t *p, size_t n, uint8_t delimiter, uint32_t base, uint32_t *out) {
    uint32_t *o = out;
    size_t i = 0;
#if defined(__SSE2__)
    const __m128i d = _mm_set1_epi8((char)delimiter), q = _mm_set1_epi8('"');
    const __m128i lf = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r');
    for (; i + 64 <= n; i += 64) {
        uint64_t mask = specials64(p + i, d, q, lf, cr);
        if (mask == 0) continue;
        const uint32_t at = base + (uint32_t)i;
        const int count = __builtin_popcountll(mask);
        // Eight at a time without a branch per bit (most blocks have fewer than eight).
        for (int k = 0; k < 8; k++) {
            o[k] = at + (uint32_t)__builtin_ctzll(mask | (1ULL << 63));
            mask &= mask - 1;
        }
        if (count > 8) {
            for (int k = 8; k < count; k++) {
                o[k] = at + (uint32_t)__builtin_ctzll(mask);
                mask &= mask - 1;
            }
        }
        o += count;
    }
#endif
    for (; i < n; i++) {
        const uint8_t c = p[i];
        if (c == delimiter || c == '"' || c == '\n' || c == '\r') *o++ = base + (uint32_t)i;
    }
    return (size_t)(o - out);
}
