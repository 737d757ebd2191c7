#!/usr/bin/env python3
"""Generate deterministic test data for pipe-run benchmarks and samples.

    gen-data.py orders     (--size-mib N | --rows N) [--seed S] OUT
    gen-data.py access-log (--size-mib N | --rows N) [--seed S] OUT

orders:     CSV with a header and 10 columns
            (id,customer,email,city,country,status,amount,currency,created_at,note).
            About 3% of fields need quoting: embedded commas, doubled quotes
            and a few quoted newlines (in customer, city and note).
access-log: Apache/nginx "combined" log lines, mostly 200, ~1% 500.

With --size-mib the file stops at the first row boundary at or after N MiB;
with --rows exactly N rows (plus the header for orders) are written.
The same arguments always give the same bytes (stdlib only, fixed seed).

Speed comes from pre-rendering pools of row fragments once and then only
sampling and joining them, a big chunk of rows at a time.
"""

import argparse
import calendar
import random
import sys
import time
import unicodedata

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

def write(chunks, out, size_bytes=None, rows=None, has_header=False):
    """Write lines from chunks until size_bytes is reached (at a row boundary)
    or exactly `rows` data rows have been written."""
    written = 0
    nrows = 0
    with open(out, "wb") as f:
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
    ap.add_argument("kind", choices=["orders", "access-log"])
    ap.add_argument("out", help="output file")
    size = ap.add_mutually_exclusive_group(required=True)
    size.add_argument("--size-mib", type=float, help="stop at the first row boundary after N MiB")
    size.add_argument("--rows", type=int, help="write exactly N data rows")
    ap.add_argument("--seed", type=int, default=20240601, help="random seed (default: %(default)s)")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    if args.kind == "orders":
        chunks, has_header = orders_chunks(rng), True
    else:
        chunks, has_header = log_chunks(rng), False
    size_bytes = int(args.size_mib * MIB) if args.size_mib is not None else None
    start = time.monotonic()
    n = write(chunks, args.out, size_bytes=size_bytes, rows=args.rows, has_header=has_header)
    print(f"{args.out}: {n} rows in {time.monotonic() - start:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
