#!/usr/bin/env python3
"""Writes a seeded synthetic events file as NDJSON and CSV: 10 columns (ints, floats, strings,
timestamps). Same seed, same bytes."""
import argparse
import datetime
import json
import random

COLUMNS = ["event_time", "id", "user_id", "amount", "score", "country", "device", "session", "created_at", "flag"]
COUNTRIES = ["DE", "FR", "US", "BR", "IN", "JP", "CA", "AU", "ZA", "MX"]
DEVICES = ["mobile", "desktop", "tablet", "tv", "watch"]


def rows(count, seed, first=0):
    rng = random.Random(seed)
    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    for i in range(first, first + count):
        event_time = start + datetime.timedelta(milliseconds=i * 37 + rng.randrange(1000))
        created_at = event_time - datetime.timedelta(seconds=rng.randrange(86400))
        yield [
            event_time.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            i,
            rng.randrange(1_000_000),
            round(rng.uniform(0, 10_000), 2),
            rng.random(),
            rng.choice(COUNTRIES),
            rng.choice(DEVICES),
            "s-%016x" % rng.getrandbits(64),
            created_at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            rng.randrange(2),
        ]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--first", type=int, default=0, help="index of the first row: event times follow from it")
    parser.add_argument("--out", required=True, help="path prefix; writes PREFIX.ndjson and PREFIX.csv")
    args = parser.parse_args()
    with open(args.out + ".ndjson", "w") as ndjson, open(args.out + ".csv", "w") as csv:
        csv.write(",".join(COLUMNS) + "\n")
        for row in rows(args.rows, args.seed, args.first):
            ndjson.write(json.dumps(dict(zip(COLUMNS, row)), separators=(",", ":")) + "\n")
            csv.write(",".join(str(v) for v in row) + "\n")


if __name__ == "__main__":
    main()
