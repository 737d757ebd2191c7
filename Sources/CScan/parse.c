// The record parser behind parsing ahead on the read-ahead thread (see BlockParser.swift): the
// reader's RFC 4180 parse, for a block with no input after it. Every delimiter, quote, CR and
// LF is in the list `ix`, in order, so each entry is the end of a field, a quote, or a line end,
// and a field costs one entry: a field starts just after the previous entry, and a quoted field
// is one whose first byte is listed (a quote).
#include "cscan.h"

#include <string.h>

size_t cscan_parse_records(const uint8_t *b, size_t start, size_t e, const uint32_t *ix, size_t k0, uint8_t d,
                           cscan_record *records, size_t record_capacity, cscan_field *fields,
                           size_t field_capacity, uint8_t *scratch, size_t *out_end, size_t *out_special,
                           int *out_malformed) {
    int malformed = 0;
    size_t k = k0, nr = 0, nf = 0, scratch_used = 0;
    while (ix[k] < start) k += 1;
    size_t last_end = start, last_k = k;
    size_t field_start = start;
    while (nr < record_capacity) {
        const size_t first_field = nf;
        uint32_t newlines = 0;
        uint32_t verbatim = 1;
        size_t rec_end;
        for (;;) {
            if (nf == field_capacity) goto stop;
            size_t q = ix[k];
            // The list ends with `e`: the record does not end in the block.
            if (q >= e) goto stop;
            uint8_t c = b[q];
            if (c == '"') {
                // A quote inside an unquoted field is malformed (the reader reports it).
                if (q != field_start) goto bad;
                int must_be_quoted = 0, unescaped = 0;
                const size_t content_start = q + 1;
                size_t segment = content_start;
                const size_t scratch_start = scratch_used;
                k += 1;
                for (;;) {
                    size_t qi = ix[k];
                    while (qi < e && b[qi] != '"') {
                        if (b[qi] == '\n') newlines += 1;
                        must_be_quoted = 1;
                        qi = ix[++k];
                    }
                    // Unterminated, or its end not known yet.
                    if (qi + 1 >= e) goto stop;
                    if (b[qi + 1] == '"') {
                        // `""` is one quote: what came before it, with one quote, goes to scratch.
                        const size_t n = qi + 1 - segment;
                        memcpy(scratch + scratch_used, b + segment, n);
                        scratch_used += n;
                        unescaped = 1;
                        segment = qi + 2;
                        k += 2;
                        continue;
                    }
                    if (!must_be_quoted && !unescaped) verbatim = 0;
                    if (unescaped) {
                        const size_t n = qi - segment;
                        memcpy(scratch + scratch_used, b + segment, n);
                        scratch_used += n;
                        fields[nf].start = scratch + scratch_start;
                        fields[nf].end = scratch + scratch_used;
                    } else {
                        fields[nf].start = b + content_start;
                        fields[nf].end = b + qi;
                    }
                    nf += 1;
                    k += 1;
                    q = qi + 1;
                    break;
                }
                // The byte after the closing quote must end the field.
                if (ix[k] != q) goto bad;
                c = b[q];
            } else {
                fields[nf].start = b + field_start;
                fields[nf].end = b + q;
                nf += 1;
            }
            k += 1;
            field_start = q + 1;
            if (c == d) continue;
            if (c == '\n') {
                rec_end = q + 1;
                break;
            }
            if (c == '\r') {
                if (q + 1 >= e) goto stop;
                verbatim = 0;
                if (b[q + 1] == '\n') {
                    rec_end = q + 2;
                    k += 1;
                } else {
                    rec_end = q + 1;
                }
                field_start = rec_end;
                break;
            }
            // A quote right after a closing quote cannot be (it would be `""`): malformed.
            goto bad;
        }
        records[nr].end = (uint32_t)rec_end;
        records[nr].first_field = (uint32_t)first_field;
        records[nr].field_count = (uint32_t)(nf - first_field);
        records[nr].flags = (newlines + 1) << 1 | verbatim;
        nr += 1;
        last_end = rec_end;
        last_k = k;
    }
    goto stop;
bad:
    malformed = 1;
stop:
    *out_malformed = malformed;
    *out_end = last_end;
    *out_special = last_k;
    return nr;
}
