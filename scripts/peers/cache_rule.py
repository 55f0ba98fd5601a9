"""The rule of `qgemm bench --cold` for the peers' Python harnesses
(ort_timing.py, torch_gemm.py; cache_evictor.h is the C harnesses' copy):
before every timed run, read a buffer of twice the caches the run's most
threads may use (an L2 each, an L3 for each of as many L3s as threads; at
least 64 MiB), on the timed call's threads, not timed. A harness's input line
ends in "cold N" for that, N being the most threads of the run (qgemm bench
sizes one buffer for its thread list). Plain Python, so a harness's own python
(the torch venv) can import it."""
import glob
import os


def cache_bytes(level):
    """Bytes of cpu0's level-`level` data or unified cache, from Linux sysfs
    (as qgemm reads them); 0 where sysfs does not say."""
    for d in glob.glob("/sys/devices/system/cpu/cpu0/cache/index*"):
        try:
            if int(open(os.path.join(d, "level")).read()) != level:
                continue
            if open(os.path.join(d, "type")).read().strip() == "Instruction":
                continue
            size = open(os.path.join(d, "size")).read().strip()
        except (OSError, ValueError):
            continue
        units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
        if size[-1:] in units and size[:-1].isdigit():
            return int(size[:-1]) * units[size[-1]]
        if size.isdigit():
            return int(size)
    return 0


def l3_count():
    """The distinct L3 caches of the online CPUs (sysfs shared_cpu_list), as
    qgemm bench counts them; 1 where sysfs does not say."""
    lists = set()
    for d in glob.glob("/sys/devices/system/cpu/cpu[0-9]*/cache/index*"):
        try:
            if int(open(os.path.join(d, "level")).read()) == 3:
                lists.add(open(os.path.join(d, "shared_cpu_list")).read().strip())
        except (OSError, ValueError):
            continue
    return max(len(lists), 1)


def evict_bytes(threads):
    """The bytes an eviction reads in a run of at most THREADS threads."""
    t = max(threads, 1)
    caches = cache_bytes(2) * t + cache_bytes(3) * min(t, l3_count())
    return max(2 * caches, 64 << 20)


def cold_threads(fields, line, harness):
    """The N of an input line's trailing "cold N" (its fields past the
    harness's own), or None for a warm line; exits on anything else."""
    if not fields:
        return None
    if len(fields) == 2 and fields[0] == "cold" and fields[1].isdigit() and int(fields[1]) > 0:
        return int(fields[1])
    raise SystemExit(f"{harness}: expected a line's end to be nothing or \"cold N\", got {line.strip()!r}")
