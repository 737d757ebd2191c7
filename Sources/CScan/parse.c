// The record parser behind parsing ahead on the read-ahead thread (see BlockParser.swift): the
// reader's RFC 4180 parse, walking the list of special bytes, for a block with no input after it.
#include "cscan.h"

#include <string.h>

size_t cscan_parse_records(const uint8_t *b, size_t start, size_t e, const uint32_t *ix, size_t k0, uint8_t d,
                           cscan_record *records, size_t record_capacity, cscan_field *fields,
                           size_t field_capacity, uint8_t *scratch, size_t *out_end, size_t *out_special) {
    size_t k = k0, p = start, nr = 0, nf = 0, scratch_used = 0;
    size_t last_end = start, last_k = k0;
    while (nr < record_capacity) {
        const size_t first_field = nf;
        uint32_t newlines = 0;
        int verbatim = 1;
        size_t rec_end;
        for (;;) {
            if (nf == field_capacity) goto stop;
            if (p < e && b[p] == '"') {
                int must_be_quoted = 0, unescaped = 0;
                p += 1;
                const size_t content_start = p;
                size_t segment = p;
                const size_t scratch_start = scratch_used;
                for (;;) {
                    size_t qi = ix[k];
                    while (qi < p) qi = ix[++k];
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
                        p = qi + 2;
                        segment = p;
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
                    p = qi + 1;
                    break;
                }
            } else {
                const size_t field_start = p;
                size_t q = ix[k];
                while (q < p) q = ix[++k];
                p = q;
                if (p == e) goto stop;
                fields[nf].start = b + field_start;
                fields[nf].end = b + p;
                nf += 1;
            }
            const uint8_t c = b[p];
            if (c == d) {
                p += 1;
                continue;
            }
            if (c == '\n') {
                rec_end = p + 1;
                break;
            }
            if (c == '\r') {
                if (p + 1 >= e) goto stop;
                verbatim = 0;
                rec_end = b[p + 1] == '\n' ? p + 2 : p + 1;
                break;
            }
            // A quote inside an unquoted field, or a byte after a closing quote: malformed (the
            // reader reports it).
            goto stop;
        }
        records[nr].end = (uint32_t)rec_end;
        records[nr].first_field = (uint32_t)first_field;
        records[nr].field_count = (uint32_t)(nf - first_field);
        records[nr].flags = (newlines + 1) << 1 | (uint32_t)verbatim;
        nr += 1;
        p = rec_end;
        last_end = rec_end;
        last_k = k;
    }
stop:
    *out_end = last_end;
    *out_special = last_k;
    return nr;
}
