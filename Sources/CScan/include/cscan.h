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

/// Writes `count` bytes of `fd` at `offset` to the disk and waits until they are there (Linux
/// `sync_file_range`, which leaves out the file's metadata and the disk's own cache: not a
/// substitute for `fdatasync`). Returns 0 or -1 with errno.
int cscan_finish_writeback(int fd, int64_t offset, int64_t count);

/// A record found by ``cscan_parse_records``.
typedef struct {
    /// The position just past its line end.
    uint32_t end;
    /// Its first field in the field array, and how many it has.
    uint32_t first_field;
    uint32_t field_count;
    /// The line feeds in it (its line end and any inside quotes) shifted left by one; bit 0
    /// set when writing its fields back gives its bytes exactly (quotes only where needed, an
    /// LF line end).
    uint32_t flags;
} cscan_record;

/// A field: its bytes are `[start, end)`, unquoted, with `""` turned into `"`. (The layout of
/// Swift's `UnsafeRawBufferPointer`, which the caller checks.)
typedef struct {
    const uint8_t *start;
    const uint8_t *end;
} cscan_field;

/// Parses RFC 4180 records from `b + start` (a record start) up to `b + e`, where every
/// delimiter `d`, quote, LF and CR at or after `start` is listed in `ix` from index `k0` on, in
/// order, and `ix` then holds `e`. Stops before the first record that does not end before
/// `e`, is malformed, or does not fit in `records` or `fields`. Escaped fields are
/// unescaped into `scratch` (as many bytes as the block may be needed). Returns how many
/// records it wrote; `*out_end` is where the last ends (or `start`), `*out_special` an index of
/// `ix` at or before the first position there, and `*out_malformed` 1 when it stopped at a
/// malformed record (else 0).
size_t cscan_parse_records(const uint8_t *b, size_t start, size_t e, const uint32_t *ix, size_t k0, uint8_t d,
                           cscan_record *records, size_t record_capacity, cscan_field *fields,
                           size_t field_capacity, uint8_t *scratch, size_t *out_end, size_t *out_special,
                           int *out_malformed);

/// The number of CPUs in this process's affinity mask, or -1 where it cannot be known.
int cscan_allowed_cpus(void);

#endif
