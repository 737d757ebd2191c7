// The structural scan behind the CSV reader: finds every byte that can end a field (delimiter,
// quote, LF, CR) 64 bytes at a time, so the parser walks a list of positions instead of testing
// every byte. AVX2 (with POPCNT and BMI) where the CPU has it, SSE2 otherwise, plain C elsewhere.
#include "cscan.h"

// Appends `at + i` for each bit `i` set in `mask`: eight without a branch per bit (most blocks
// of 64 bytes have fewer than eight special bytes), then the rest one by one.
#define CSCAN_LIST_BITS(mask, at, o)                                            \
    do {                                                                        \
        const int count = __builtin_popcountll(mask);                           \
        for (int k = 0; k < 8; k++) {                                           \
            (o)[k] = (at) + (uint32_t)__builtin_ctzll((mask) | (1ULL << 63));   \
            (mask) &= (mask) - 1;                                               \
        }                                                                       \
        for (int k = 8; k < count; k++) {                                       \
            (o)[k] = (at) + (uint32_t)__builtin_ctzll(mask);                    \
            (mask) &= (mask) - 1;                                               \
        }                                                                       \
        (o) += count;                                                           \
    } while (0)

static size_t list_tail(const uint8_t *p, size_t i, size_t n, uint8_t delimiter, uint32_t base, uint32_t *o) {
    uint32_t *start = o;
    for (; i < n; i++) {
        const uint8_t c = p[i];
        if (c == delimiter || c == '"' || c == '\n' || c == '\r') *o++ = base + (uint32_t)i;
    }
    return (size_t)(o - start);
}

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

__attribute__((target("avx2,bmi,popcnt")))
static size_t index_avx2(const uint8_t *p, size_t n, uint8_t delimiter, uint32_t base, uint32_t *out) {
    const __m256i d = _mm256_set1_epi8((char)delimiter), q = _mm256_set1_epi8('"');
    const __m256i lf = _mm256_set1_epi8('\n'), cr = _mm256_set1_epi8('\r');
    uint32_t *o = out;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        const __m256i a = _mm256_loadu_si256((const __m256i *)(p + i));
        const __m256i b = _mm256_loadu_si256((const __m256i *)(p + i + 32));
        const __m256i ha = _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi8(a, d), _mm256_cmpeq_epi8(a, q)),
                                           _mm256_or_si256(_mm256_cmpeq_epi8(a, lf), _mm256_cmpeq_epi8(a, cr)));
        const __m256i hb = _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi8(b, d), _mm256_cmpeq_epi8(b, q)),
                                           _mm256_or_si256(_mm256_cmpeq_epi8(b, lf), _mm256_cmpeq_epi8(b, cr)));
        uint64_t mask = (uint64_t)(uint32_t)_mm256_movemask_epi8(ha) | (uint64_t)(uint32_t)_mm256_movemask_epi8(hb) << 32;
        if (mask == 0) continue;
        const uint32_t at = base + (uint32_t)i;
        CSCAN_LIST_BITS(mask, at, o);
    }
    return (size_t)(o - out) + list_tail(p, i, n, delimiter, base, o);
}

static size_t index_sse2(const uint8_t *p, size_t n, uint8_t delimiter, uint32_t base, uint32_t *out) {
    const __m128i d = _mm_set1_epi8((char)delimiter), q = _mm_set1_epi8('"');
    const __m128i lf = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r');
    uint32_t *o = out;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        uint64_t mask = 0;
        for (int j = 0; j < 4; j++) {
            const __m128i v = _mm_loadu_si128((const __m128i *)(p + i + 16 * j));
            const __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, d), _mm_cmpeq_epi8(v, q)),
                                             _mm_or_si128(_mm_cmpeq_epi8(v, lf), _mm_cmpeq_epi8(v, cr)));
            mask |= (uint64_t)(uint16_t)_mm_movemask_epi8(hit) << (16 * j);
        }
        if (mask == 0) continue;
        const uint32_t at = base + (uint32_t)i;
        CSCAN_LIST_BITS(mask, at, o);
    }
    return (size_t)(o - out) + list_tail(p, i, n, delimiter, base, o);
}

static int best_level(void) {
    // 0: not yet known. Threads may race to set it: they set the same value.
    static int level = 0;
    int known = __atomic_load_n(&level, __ATOMIC_RELAXED);
    if (known == 0) {
        __builtin_cpu_init();
        known = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi") && __builtin_cpu_supports("popcnt") ? 2 : 1;
        __atomic_store_n(&level, known, __ATOMIC_RELAXED);
    }
    return known;
}

int cscan_scan_level(void) { return best_level(); }

size_t cscan_index_specials_at(int level, const uint8_t *p, size_t n, uint8_t delimiter, uint32_t base, uint32_t *out) {
    if (level > best_level()) level = best_level();
    switch (level) {
    case 2: return index_avx2(p, n, delimiter, base, out);
    case 1: return index_sse2(p, n, delimiter, base, out);
    default: return list_tail(p, 0, n, delimiter, base, out);
    }
}

size_t cscan_index_specials(const uint8_t *p, size_t n, uint8_t delimiter, uint32_t base, uint32_t *out) {
    return best_level() == 2 ? index_avx2(p, n, delimiter, base, out) : index_sse2(p, n, delimiter, base, out);
}

#else

int cscan_scan_level(void) { return 0; }

size_t cscan_index_specials_at(int level, const uint8_t *p, size_t n, uint8_t delimiter, uint32_t base, uint32_t *out) {
    (void)level;
    return list_tail(p, 0, n, delimiter, base, out);
}

size_t cscan_index_specials(const uint8_t *p, size_t n, uint8_t delimiter, uint32_t base, uint32_t *out) {
    return list_tail(p, 0, n, delimiter, base, out);
}

#endif
