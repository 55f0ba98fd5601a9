"""The optional end of a peer harness's input line, "cold BYTES CHUNK": before
every timed run the harness evicts the caches by reading BYTES bytes in
chunks of CHUNK bytes, each chunk twice in a row, as `qgemm bench --cold`
does before each of its own (its JSON's machine.evict_bytes and
machine.evict_chunk_bytes, which compare.py and compare_int4.py pass on), so
the rule lives in qgemm alone. Why twice: an L3 that keeps the lines it has
seen used again (Zen 5's) lets one pass over the buffer go by and keeps the
weights; the second read of a chunk hits in the L3 and makes its lines as
worth keeping (qgemm's CacheEvictor, Sources/qgemm/BenchSupport.swift, has
the figures). Plain Python, so a harness's own python (the
torch venv) can import it."""


def cold_eviction(fields, line, harness):
    """(BYTES, CHUNK) of an input line's trailing "cold BYTES CHUNK" (its
    fields past the harness's own), or None for a warm line; exits on
    anything else."""
    if not fields:
        return None
    if (len(fields) == 3 and fields[0] == "cold" and all(f.isdigit() and int(f) > 0 for f in fields[1:])
            and int(fields[2]) <= int(fields[1])):
        return int(fields[1]), int(fields[2])
    raise SystemExit(f"{harness}: expected a line's end to be nothing or \"cold BYTES CHUNK\" (0 < CHUNK <= BYTES), "
                     f"got {line.strip()!r}")


def chunks(count, chunk):
    """The (start, end) of each chunk of `chunk` items out of `count`."""
    return [(start, min(start + chunk, count)) for start in range(0, count, chunk)]
