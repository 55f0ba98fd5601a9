"""What the Python harnesses report of their timed runs, taken as qgemm bench
takes it. Plain Python, so a harness's own python (the torch venv) can import
it."""


def median_of_sorted(times):
    """The median of sorted run times: the middle run, or the mean of the two
    middle ones for an even count."""
    n = len(times)
    return times[n // 2] if n % 2 else (times[n // 2 - 1] + times[n // 2]) / 2
