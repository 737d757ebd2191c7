#!/usr/bin/env python3
"""An exec transform for pipe-run, in Python: adds a column with the city in capitals.

pipe-run writes the input column names as one JSON array, then one JSON array per row; this
program answers each line with one line: the output column names, then each output row (or an
empty line to drop a row). Flush after every answer.

    pipe-run run samples/orders.csv -o out.csv -t 'exec:python3 samples/exec/city_upper.py'
"""
import json
import sys

header = json.loads(sys.stdin.readline())
city = header.index("city")
print(json.dumps(header + ["city_upper"]), flush=True)

for line in sys.stdin:
    row = json.loads(line)
    if row[city] == "":
        print("", flush=True)          # drop rows without a city
        continue
    print(json.dumps(row + [row[city].upper()], ensure_ascii=False), flush=True)
