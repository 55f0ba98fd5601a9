"""The optional end of a peer harness's input line, "cold BYTES": before every
timed run the harness evicts the caches by reading BYTES bytes, as many as
`qgemm bench --cold` reads before each of its own (its JSON's
machine.evict_bytes, which compare.py and compare_int4.py pass on), so the
rule lives in qgemm alone. Plain Python, so a harness's own python (the
torch venv) can import it."""


def cold_bytes(fields, line, harness):
    """The BYTES of an input line's trailing "cold BYTES" (its fields past the
    harness's own), or None for a warm line; exits on anything else."""
    if not fields:
        return None
    if len(fields) == 2 and fields[0] == "cold" and fields[1].isdigit() and int(fields[1]) > 0:
        return int(fields[1])
    raise SystemExit(f"{harness}: expected a line's end to be nothing or \"cold BYTES\", got {line.strip()!r}")
