#ifndef PIPE_RUN_CSCAN_H
#define PIPE_RUN_CSCAN_H
#include <stddef.h>
#include <stdint.h>

/// Writes to `out`, in order, `base + i` for every `i < n` where `p[i]` is `delimiter`, a quote,
/// a line feed or a carriage return; returns how many it wrote. `out` must have room for
/// `n + 64` entries (it may write up to 63 entries past the returned count).
size_t cscan_index_specials(const uint8_t *p, size_t n, uint8_t delimiter, uint32_t base, uint32_t *out);

/// Whether this CPU can run ``cscan_crc32_fold`` (x86-64 with PCLMULQDQ and SSE4.1).
int cscan_has_fast_crc32(void);

/// Continues the CRC-32 `crc` (zlib's `crc32` conventions: start from 0) over `len` bytes at
/// `p`; `len` must be at least 64 and a multiple of 16. Only when ``cscan_has_fast_crc32``.
uint32_t cscan_crc32_fold(uint32_t crc, const uint8_t *p, size_t len);

/// The scan this CPU runs: 2 for AVX2, 1 for SSE2, 0 for plain C.
int cscan_scan_level(void);

/// ``cscan_index_specials`` with the scan of `level` (or the best this CPU has, if lower), so
/// tests can check each one.
size_t cscan_index_specials_at(int level, const uint8_t *p, size_t n, uint8_t delimiter, uint32_t base, uint32_t *out);

/// Asks the kernel to start writing `count` bytes of `fd` at `offset` to the disk, without
/// waiting (Linux `sync_file_range`; nothing elsewhere). Returns 0 or -1 with errno.
int cscan_start_writeback(int fd, int64_t offset, int64_t count);

#endif
