#!/usr/bin/env python3
"""Generate deterministic test data for pipe-run benchmarks and samples.

    gen-data.py orders       (--size-mib N | --rows N) [--seed S] [--bgzf] OUT
    gen-data.py orders-short (--size-mib N | --rows N) [--seed S] [--bgzf] OUT
    gen-data.py quoted-lines (--size-mib N | --rows N) [--seed S] [--bgzf] OUT
    gen-data.py access-log   (--size-mib N | --rows N) [--seed S] [--bgzf] OUT

orders:       CSV with a header and 10 columns
              (id,customer,email,city,country,status,amount,currency,created_at,note),
              ~110-byte rows, ~7% refunded.
              About 3% of fields need quoting: embedded commas, doubled quotes
              and a few quoted newlines (in customer, city and note).
orders-short: the same kind of CSV with ~78-byte rows and 10 columns
              (id,customer,city,country,status,amount,currency,sku,day,note),
              ~17% refunded, about 3% of fields quoted (commas, doubled quotes,
              a few newlines): more rows per byte for the same filter/select.
quoted-lines: CSV (id,status,city,amount,note) whose quoted notes often hold
              newlines and text that looks like whole CSV records (fake rows,
              fake headers, doubled quotes, a newline just before the closing
              quote), plus about every 16 MiB one note of 2-3.5 MiB (the first
              after 1 MiB; one that would end past the --size-mib target is left
              out, so from --size-mib 6 on the file has at least one; Python's
              csv module reads those only with a raised csv.field_size_limit).
              ~17% refunded, about half of the notes span lines. A reader that
              starts in the middle of the file and guesses where a record begins
              gets these wrong.
access-log:   Apache/nginx "combined" log lines, mostly 200, ~1% 500.

With --size-mib the file stops at the first row boundary at or after N MiB;
with --rows exactly N rows (plus the header for the CSV kinds) are written.
--bgzf writes the same bytes compressed as BGZF (blocked gzip, as in htslib):
gzip members of at most 65280 input bytes each (zlib level 6), each with a "BC"
extra field holding the member's size minus 1, then the 28-byte empty EOF
member; any gzip reader reads it as one stream. --size-mib counts the bytes
before compression.
The same arguments always give the same bytes (stdlib only, fixed seed).

Speed comes from pre-rendering pools of row fragments once and then only
sampling and joining them, a big chunk of rows at a time.
"""

import argparse
import calendar
import random
import struct
import sys
import time
import unicodedata
import zlib

MIB = 1024 * 1024
POOL = 20000          # pre-rendered fragments per pool
CHUNK_ROWS = 50000    # rows rendered and written per write() call

# --------------------------------------------------------------------------
# vocabulary

FIRST = ("James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth "
         "William Barbara Richard Susan Joseph Jessica Thomas Sarah Carlos Ana "
         "Wei Mei Hiroshi Yuki Olga Ivan Fatima Omar Priya Arjun Lars Ingrid "
         "Chloé Zoë José Ümit Søren Agnieszka Mateo Sofia Noah Emma Liam Olivia").split()
LAST = ("Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez "
        "Hernandez Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin "
        "Lee Perez Thompson White Harris Sanchez Clark Lewis Robinson Walker Young "
        "Nakamura Chen Wang Kowalski Novak Müller Schmidt Dubois Rossi Silva "
        "Andersson Nielsen Ivanova Okafor Patel Kim Nguyen O'Brien").split()
NICK = ["Bob", "Ace", "Doc", "Red", "Kid", "Boss", "Sunny", "Tex"]
DOMAINS = ["example.com", "mail.example.org", "shop.example.net", "corp.example",
           "example.co.uk", "post.example.de"]

# (city, country, weight); weights are relative
CITIES = [
    ("New York", "US", 10), ("Los Angeles", "US", 8), ("Chicago", "US", 6),
    ("Houston", "US", 5), ("Seattle", "US", 4), ("Boston", "US", 4),
    ("London", "GB", 8), ("Manchester", "GB", 3), ("Paris", "FR", 6),
    ("Lyon", "FR", 2), ("Berlin", "DE", 6), ("München", "DE", 3),
    ("Madrid", "ES", 4), ("Barcelona", "ES", 3), ("Roma", "IT", 3),
    ("Amsterdam", "NL", 3), ("Stockholm", "SE", 2), ("Warszawa", "PL", 2),
    ("Tokyo", "JP", 6), ("Osaka", "JP", 2), ("Seoul", "KR", 3),
    ("Shanghai", "CN", 4), ("Mumbai", "IN", 4), ("São Paulo", "BR", 4),
    ("Toronto", "CA", 4), ("Sydney", "AU", 3), ("Lagos", "NG", 2),
    ("Mexico City", "MX", 3),
    # these need quoting (~5% of rows in total)
    ("Washington, D.C.", "US", 3), ("Saint Paul, Minnesota", "US", 1),
    ("Hamilton, Ontario", "CA", 1), ("Victoria, B.C.", "CA", 1),
    ("Perth, Western Australia", "AU", 1),
]

# (status, weight): refunded ~7%
STATUSES = [("paid", 45), ("shipped", 30), ("pending", 12), ("refunded", 7),
            ("cancelled", 6)]
CURRENCIES = {"US": "USD", "GB": "GBP", "FR": "EUR", "DE": "EUR", "ES": "EUR",
              "IT": "EUR", "NL": "EUR", "SE": "SEK", "PL": "PLN", "JP": "JPY",
              "KR": "KRW", "CN": "CNY", "IN": "INR", "BR": "BRL", "CA": "CAD",
              "AU": "AUD", "NG": "NGN", "MX": "MXN"}

NOTES_PLAIN = ["gift wrap", "leave at door", "express delivery", "first order",
               "repeat customer", "fragile", "call before delivery",
               "birthday present", "price match applied", "backorder"]
NOTES_COMMA = ["ring twice, then wait", "left with neighbour, no 12",
               "damaged box, contents ok", "partial refund, see ticket",
               "red, size M", "deliver after 6pm, weekdays only",
               "address changed, confirmed by phone"]
NOTES_QUOTE = ['customer wrote "urgent"', 'item "as described"',
               'label says "FRAGILE", handle with care',
               'promo code "SPRING24" applied']
NOTES_NEWLINE = ["line one\nline two", "deliver to back door\ngate code 4411",
                 "refund requested\nreason: arrived late",
                 "note from support:\n\"customer is happy\", closing"]


def csv_field(s):
    """Render one CSV field with minimal quoting (RFC 4180)."""
    if any(c in s for c in ',"\n\r'):
        return '"' + s.replace('"', '""') + '"'
    return s


def weighted(rng, items, k):
    values = [it[:-1] if len(it) > 2 else it[0] for it in items]
    weights = [it[-1] for it in items]
    return rng.choices(values, weights=weights, k=k)


# --------------------------------------------------------------------------
# orders

def orders_pools(rng):
    """Return pools of pre-rendered fragments: who (customer,email,city,country,)
    and what (status,amount,currency,created_at,note)."""
    who = []
    for (city, country) in weighted(rng, CITIES, POOL):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        r = rng.random()
        if r < 0.04:                      # "Last, First"
            customer = f"{last}, {first}"
        elif r < 0.07:                    # nickname in doubled quotes
            customer = f'{first} "{rng.choice(NICK)}" {last}'
        else:
            customer = f"{first} {last}"
        local = f"{first}.{last}".lower().replace("'", "")
        local = unicodedata.normalize("NFKD", local).encode("ascii", "ignore").decode()
        email = f"{local}{rng.randrange(1000)}@{rng.choice(DOMAINS)}"
        who.append(",".join((csv_field(customer), email, csv_field(city), country)))

    what = []
    t0 = calendar.timegm((2023, 1, 1, 0, 0, 0))
    for status in weighted(rng, STATUSES, POOL):
        country = rng.choice(list(CURRENCIES))
        amount = f"{rng.randrange(100, 500000) / 100:.2f}"
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                time.gmtime(t0 + rng.randrange(2 * 365 * 86400)))
        r = rng.random()
        if r < 0.60:
            note = ""
        elif r < 0.78:
            note = rng.choice(NOTES_PLAIN)
        elif r < 0.94:
            note = rng.choice(NOTES_COMMA)
        elif r < 0.99:
            note = rng.choice(NOTES_QUOTE)
        else:
            note = rng.choice(NOTES_NEWLINE)
        what.append(",".join((status, amount, CURRENCIES[country], created,
                              csv_field(note))))
    return who, what


def orders_chunks(rng):
    """Yield lists of rendered lines (header first), forever."""
    who, what = orders_pools(rng)
    yield ["id,customer,email,city,country,status,amount,currency,created_at,note\n"]
    next_id = 1
    while True:
        a = rng.choices(who, k=CHUNK_ROWS)
        b = rng.choices(what, k=CHUNK_ROWS)
        ids = range(next_id, next_id + CHUNK_ROWS)
        yield [f"{i},{x},{y}\n" for i, x, y in zip(ids, a, b)]
        next_id += CHUNK_ROWS


# --------------------------------------------------------------------------
# orders-short: ~80-byte rows, more of them refunded

# (status, weight): refunded ~17%
STATUSES_SHORT = [("paid", 40), ("shipped", 25), ("pending", 10), ("refunded", 17),
                  ("cancelled", 8)]
NOTES_SHORT_PLAIN = ["gift", "fragile", "express", "repeat", "backorder", "promo",
                     "first order", "leave at door"]
NOTES_SHORT_COMMA = ["red, M", "ring, wait", "box dented, ok", "late, refunded",
                     "blue, XL"]
NOTES_SHORT_QUOTE = ['said "asap"', '"fragile"', 'code "SPRING"']
NOTES_SHORT_NEWLINE = ["gate\ncode 4411", "call first\nthen leave", "back door\nplease"]


def orders_short_pools(rng):
    """Pools of who (customer,city,country,) and what (status,...,note) fragments."""
    who = []
    for (city, country) in weighted(rng, CITIES, POOL):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        r = rng.random()
        if r < 0.035:                     # "Last, First"
            customer = f"{last}, {first}"
        elif r < 0.06:                    # nickname in doubled quotes
            customer = f'{first} "{rng.choice(NICK)}" {last}'
        else:
            customer = f"{first} {last}"
        who.append(",".join((csv_field(customer), csv_field(city), country)))

    what = []
    t0 = calendar.timegm((2023, 1, 1, 0, 0, 0))
    for status in weighted(rng, STATUSES_SHORT, POOL):
        country = rng.choice(list(CURRENCIES))
        amount = f"{rng.randrange(100, 1000000) / 100:.2f}"
        day = time.strftime("%Y-%m-%d", time.gmtime(t0 + rng.randrange(2 * 365 * 86400)))
        sku = f"SKU-{rng.randrange(10000, 100000)}"
        r = rng.random()
        if r < 0.55:
            note = ""
        elif r < 0.82:
            note = rng.choice(NOTES_SHORT_PLAIN)
        elif r < 0.94:
            note = rng.choice(NOTES_SHORT_COMMA)
        elif r < 0.985:
            note = rng.choice(NOTES_SHORT_QUOTE)
        else:
            note = rng.choice(NOTES_SHORT_NEWLINE)
        what.append(",".join((status, amount, CURRENCIES[country], sku, day,
                              csv_field(note))))
    return who, what


def orders_short_chunks(rng):
    """Yield lists of rendered lines (header first), forever."""
    who, what = orders_short_pools(rng)
    yield ["id,customer,city,country,status,amount,currency,sku,day,note\n"]
    next_id = 1
    while True:
        a = rng.choices(who, k=CHUNK_ROWS)
        b = rng.choices(what, k=CHUNK_ROWS)
        ids = range(next_id, next_id + CHUNK_ROWS)
        yield [f"{i},{x},{y}\n" for i, x, y in zip(ids, a, b)]
        next_id += CHUNK_ROWS


# --------------------------------------------------------------------------
# quoted-lines: quoted notes full of newlines and text that looks like records

QL_CHUNK_ROWS = 4000                      # small chunks: giant notes land near their mark
GIANT_FIRST = 1 * MIB                     # where the first giant note goes
GIANT_EVERY = (8 * MIB, 24 * MIB)         # distance to the next one (uniform)
GIANT_SIZE = (2 * MIB, int(3.5 * MIB))    # size of one (uniform)


def fake_record(rng):
    """Text that reads as one record of this file's columns, unquoted: it is put
    inside a quoted note (its own quotes become doubled quotes there)."""
    status = weighted(rng, STATUSES_SHORT, 1)[0]
    city = csv_field(weighted(rng, CITIES, 1)[0][0])
    amount = f"{rng.randrange(100, 100000) / 100:.2f}"
    fid = rng.randrange(1, 10 ** rng.randrange(1, 8))
    r = rng.random()
    if r < 0.75:
        return f"{fid},{status},{city},{amount}"
    if r < 0.90:                          # with a note of its own, quoted
        return f'{fid},{status},{city},{amount},"{rng.choice(NOTES_SHORT_COMMA)}"'
    if r < 0.97:                          # with an empty quoted note
        return f'{fid},{status},{city},{amount},""'
    return f'"{fid}","{status}",{city},"{amount}"'


def quoted_note(rng, fakes):
    """One note field, rendered (quoted when it needs to be)."""
    r = rng.random()
    if r < 0.25:
        note = ""
    elif r < 0.40:
        note = rng.choice(NOTES_PLAIN + NOTES_COMMA)
    elif r < 0.85:                        # 1-4 fake records, one per line
        note = "\n".join(rng.choices(fakes, k=rng.randrange(1, 5)))
    elif r < 0.90:                        # a fake header, then fake records
        note = "id,status,city,amount,note\n" + "\n".join(rng.choices(fakes, k=rng.randrange(1, 4)))
    elif r < 0.95:                        # ends in a newline: the closing quote starts a line
        note = "\n".join(rng.choices(fakes, k=rng.randrange(1, 4))) + "\n"
    elif r < 0.98:                        # starts with a newline and a quote
        note = '\n"' + rng.choice(fakes) + '"\n' + rng.choice(fakes)
    else:                                 # a longer one: 20-200 lines
        note = "\n".join(rng.choices(fakes, k=rng.randrange(20, 201)))
    return csv_field(note)


def giant_note(rng, fakes, size):
    """A quoted note of about `size` bytes of fake records, one per line."""
    lines = []
    n = 0
    while n < size:
        batch = rng.choices(fakes, k=4096)
        lines.extend(batch)
        n += sum(len(x) + 1 for x in batch)
    return csv_field("\n".join(lines))


def quoted_lines_chunks(rng, size_bytes=None):
    """Yield lists of rendered lines (header first), forever. A giant note goes into
    the first row of the first chunk that starts at or after its mark (left out
    when it would end past size_bytes)."""
    fakes = [fake_record(rng) for _ in range(POOL)]
    notes = [quoted_note(rng, fakes) for _ in range(POOL)]
    heads = [",".join((status, csv_field(city), f"{rng.randrange(100, 100000) / 100:.2f}"))
             for status, (city, _) in zip(weighted(rng, STATUSES_SHORT, POOL),
                                          weighted(rng, CITIES, POOL))]
    header = "id,status,city,amount,note\n"
    yield [header]
    written = len(header)
    giant_at = GIANT_FIRST
    next_id = 1
    while True:
        a = rng.choices(heads, k=QL_CHUNK_ROWS)
        b = rng.choices(notes, k=QL_CHUNK_ROWS)
        ids = range(next_id, next_id + QL_CHUNK_ROWS)
        lines = [f"{i},{x},{y}\n" for i, x, y in zip(ids, a, b)]
        if written >= giant_at:
            size = rng.randrange(*GIANT_SIZE)
            giant_at += rng.randrange(*GIANT_EVERY)
            note = giant_note(rng, fakes, size)
            if size_bytes is None or written + len(note) + 100 < size_bytes:
                lines[0] = f"{next_id},{a[0]},{note}\n"
        written += sum(len(x) for x in lines)
        yield lines
        next_id += QL_CHUNK_ROWS


# --------------------------------------------------------------------------
# access log

PATHS = ["/", "/index.html", "/products", "/products/{n}", "/cart", "/checkout",
         "/api/v1/orders/{n}", "/api/v1/search?q=shoes&page={p}",
         "/static/app.{n}.js", "/static/style.css", "/images/{n}.jpg",
         "/login", "/account/orders", "/blog/post-{n}", "/favicon.ico",
         "/robots.txt"]
METHODS = [("GET", 88), ("POST", 9), ("HEAD", 2), ("PUT", 1)]
# (status, weight): 500 is ~1%
HTTP_STATUS = [("200", 86), ("304", 3), ("301", 3), ("404", 6), ("500", 1),
               ("503", 1)]
REFERERS = ["-", "-", "-", "https://www.example.com/", "https://www.example.com/products",
            "https://search.example.org/?q=running+shoes", "https://news.example.net/article/42"]
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
    "curl/8.4.0",
    "Googlebot/2.1 (+http://www.google.com/bot.html)",
]
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
LINES_PER_SECOND = 25


def log_chunks(rng):
    """Yield lists of rendered log lines, forever; time moves forward."""
    ips = [f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}."
           f"{rng.randrange(1, 255)}" for _ in range(POOL)]
    requests = []
    for method, status in zip(weighted(rng, METHODS, POOL),
                              weighted(rng, HTTP_STATUS, POOL)):
        path = rng.choice(PATHS).format(n=rng.randrange(1, 5000), p=rng.randrange(1, 20))
        size = "0" if status in ("304", "301") or method == "HEAD" else str(rng.randrange(200, 250000))
        requests.append(f'"{method} {path} HTTP/1.1" {status} {size}')
    tails = [f'"{rng.choice(REFERERS)}" "{rng.choice(AGENTS)}"\n' for _ in range(POOL)]

    t = calendar.timegm((2024, 3, 1, 0, 0, 0))
    while True:
        stamps = []
        for s in range(CHUNK_ROWS // LINES_PER_SECOND):
            g = time.gmtime(t + s)
            stamps.append(f"[{g.tm_mday:02d}/{MONTHS[g.tm_mon - 1]}/{g.tm_year}:"
                          f"{g.tm_hour:02d}:{g.tm_min:02d}:{g.tm_sec:02d} +0000]")
        t += len(stamps)
        a = rng.choices(ips, k=CHUNK_ROWS)
        b = rng.choices(requests, k=CHUNK_ROWS)
        c = rng.choices(tails, k=CHUNK_ROWS)
        yield [f"{ip} - - {stamps[i // LINES_PER_SECOND]} {r} {tl}"
               for i, (ip, r, tl) in enumerate(zip(a, b, c))]


# --------------------------------------------------------------------------

BGZF_BLOCK = 0xFF00       # input bytes per BGZF member (as htslib): its deflate fits 64 KiB
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


class BgzfFile:
    """A write-only binary file that stores what it is given as BGZF: gzip members
    of at most BGZF_BLOCK input bytes, each with a BC extra field holding the
    member's total size minus 1 (little-endian uint16), then the empty EOF member."""

    def __init__(self, path):
        self.f = open(path, "wb")
        self.buf = bytearray()

    def write(self, data):
        self.buf += data
        if len(self.buf) >= BGZF_BLOCK:
            whole = len(self.buf) - len(self.buf) % BGZF_BLOCK
            for i in range(0, whole, BGZF_BLOCK):
                self._member(bytes(self.buf[i:i + BGZF_BLOCK]))
            del self.buf[:whole]

    def _member(self, data):
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        body = c.compress(data) + c.flush()
        size = 18 + len(body) + 8
        if size > 65536:          # did not shrink enough: two smaller members
            half = len(data) // 2
            self._member(data[:half])
            self._member(data[half:])
            return
        self.f.write(struct.pack("<4BI2BH2BHH", 0x1F, 0x8B, 8, 4, 0, 0, 0xFF, 6,
                                 ord("B"), ord("C"), 2, size - 1))
        self.f.write(body)
        self.f.write(struct.pack("<II", zlib.crc32(data), len(data)))

    def close(self):
        if self.buf:
            self._member(bytes(self.buf))
            self.buf = bytearray()
        self.f.write(BGZF_EOF)
        self.f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            self.close()
        else:
            self.f.close()


def write(chunks, out, size_bytes=None, rows=None, has_header=False, bgzf=False):
    """Write lines from chunks until size_bytes is reached (at a row boundary)
    or exactly `rows` data rows have been written."""
    written = 0
    nrows = 0
    with (BgzfFile(out) if bgzf else open(out, "wb")) as f:
        if has_header:
            header = "".join(next(chunks)).encode()
            f.write(header)
            written += len(header)
        for lines in chunks:
            if rows is not None and nrows + len(lines) >= rows:
                f.write("".join(lines[:rows - nrows]).encode())
                return rows
            data = "".join(lines).encode()
            if size_bytes is not None and written + len(data) >= size_bytes:
                # last chunk: find the first row boundary at or after the target
                for line in lines:
                    b = line.encode()
                    f.write(b)
                    written += len(b)
                    nrows += 1
                    if written >= size_bytes:
                        return nrows
            f.write(data)
            written += len(data)
            nrows += len(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("kind", choices=["orders", "orders-short", "quoted-lines", "access-log"])
    ap.add_argument("out", help="output file")
    size = ap.add_mutually_exclusive_group(required=True)
    size.add_argument("--size-mib", type=float, help="stop at the first row boundary after N MiB")
    size.add_argument("--rows", type=int, help="write exactly N data rows")
    ap.add_argument("--seed", type=int, default=20240601, help="random seed (default: %(default)s)")
    ap.add_argument("--bgzf", action="store_true",
                    help="compress the output as BGZF (gzip members of at most 64 KiB, zlib level 6)")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    size_bytes = int(args.size_mib * MIB) if args.size_mib is not None else None
    if args.kind == "orders":
        chunks, has_header = orders_chunks(rng), True
    elif args.kind == "orders-short":
        chunks, has_header = orders_short_chunks(rng), True
    elif args.kind == "quoted-lines":
        chunks, has_header = quoted_lines_chunks(rng, size_bytes), True
    else:
        chunks, has_header = log_chunks(rng), False
    start = time.monotonic()
    n = write(chunks, args.out, size_bytes=size_bytes, rows=args.rows,
              has_header=has_header, bgzf=args.bgzf)
    print(f"{args.out}: {n} rows in {time.monotonic() - start:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
