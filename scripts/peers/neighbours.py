"""`bench-peers --neighbour KIND`, for both comparisons: which neighbour
process (scripts/peers/neighbour.c) loads what, the CPUs the timed libraries
and the neighbour run on, and each round's order of runs alone and beside it."""
import argparse
import json
import os
import signal
import subprocess
import sys

# KIND: (what it loads, its program's arguments from the L2 and L3 sizes
# `qgemm info` reports).
KINDS = {
    "stream": ("adds to every word of a buffer four times the L3 (at least 64 MiB, at most an eighth of the memory), "
               "over and over: memory bandwidth, and the shared cache evicted",
               lambda l2, l3: ["stream", str(max(min(4 * l3, os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
                                                     // 8), 64 << 20))]),
    "l3": ("dependent random reads over 3/4 of the L3", lambda l2, l3: ["reads", str(3 * l3 // 4)]),
    "l2": ("dependent random reads over 3/4 of the L2 (shared where the CPUs are two threads of one core)",
           lambda l2, l3: ["reads", str(3 * l2 // 4)]),
    "fma": ("256-bit multiply-adds on registers, no memory (the core's ports where CPUs share one; the clock)",
            lambda l2, l3: ["fma"]),
}
HELP = ("in every round, time every library alone and beside a neighbour process on a CPU the timed threads do not "
        "use, and show how much speed each keeps: " + "; ".join(f"{kind}: {what}"
                                                                for kind, (what, _) in sorted(KINDS.items())))


def add_options(parser):
    parser.add_argument("--neighbour", choices=sorted(KINDS), help=HELP)
    parser.add_argument("--neighbour-program", help=argparse.SUPPRESS)


def set_up(args, parser, threads_csv):
    """None without --neighbour; else {"kind", "argv", "cpu", "timed_cpus"},
    with this process (and so every harness it starts) moved to the timed
    CPUs, and SIGTERM and SIGHUP turned into exits, which stop the neighbour
    (they would end Python without its `finally` blocks)."""
    if not args.neighbour:
        return None
    if not args.neighbour_program:
        parser.error("--neighbour needs the neighbour program (scripts/bench-peers builds it and passes it)")
    info = json.loads(subprocess.run([args.qgemm, "info", "--json", "-"], check=True, stdout=subprocess.PIPE,
                                     text=True).stdout)
    l2, l3 = info["caches"].get("l2_bytes") or 0, info["caches"].get("l3_bytes") or 0
    if args.neighbour in ("l3", "stream") and not l3 or args.neighbour == "l2" and not l2:
        parser.error(f"--neighbour {args.neighbour}: qgemm info reports no size for the cache it needs")
    cpus = sorted(os.sched_getaffinity(0))
    most_threads = max(int(t) for t in threads_csv.split(","))
    if most_threads >= len(cpus):
        parser.error(f"--neighbour needs a CPU the timed threads do not use: at most {len(cpus) - 1} thread(s) here, "
                     f"where this process may run on {len(cpus)} CPU(s) (--threads {threads_csv})")
    # The libraries run on the first CPUs (their threads inherit this
    # process's affinity), the neighbour on the last.
    neighbour = {"kind": args.neighbour, "argv": KINDS[args.neighbour][1](l2, l3), "cpu": cpus[-1],
                 "timed_cpus": cpus[:-1], "program": args.neighbour_program}
    os.sched_setaffinity(0, neighbour["timed_cpus"])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGHUP, lambda *_: sys.exit(129))
    return neighbour


def beside(neighbour, work):
    """work() with the neighbour running; it is stopped on every way out, and
    one that stops early is an error."""
    program = None
    what = " ".join(neighbour["argv"])
    try:
        program = subprocess.Popen([neighbour["program"]] + neighbour["argv"], stdout=subprocess.PIPE, text=True,
                                   env={**os.environ, "NEIGHBOUR_PARENT": str(os.getpid())},
                                   preexec_fn=lambda: os.sched_setaffinity(0, [neighbour["cpu"]]))
        # Its buffer filled and its load running before the first timed call.
        if program.stdout.readline().strip() != "ready":
            program.wait()
            sys.exit(f"bench-peers: the neighbour ({what}) stopped with status {program.returncode} before its load "
                     f"began")
        work()
        if program.poll() is not None:
            sys.exit(f"bench-peers: the neighbour ({what}) stopped with status {program.returncode} while the "
                     f"libraries ran beside it")
    finally:
        if program is not None:
            program.kill()
            program.wait()


def round_(neighbour, index, alone, near):
    """One round: alone() only without a neighbour; else alone() and near()
    (beside it), alone first in even rounds and last in odd ones, so that a
    drift of the machine over a round weighs on both sides alike."""
    if not neighbour:
        alone()
    elif index % 2 == 0:
        alone()
        beside(neighbour, near)
    else:
        beside(neighbour, near)
        alone()


def description(neighbour):
    return (f"{neighbour['kind']} ({' '.join(neighbour['argv'])}) on CPU {neighbour['cpu']}, the libraries on CPU(s) "
            f"{','.join(map(str, neighbour['timed_cpus']))}")


def for_json(neighbour):
    return {key: neighbour[key] for key in ("kind", "argv", "cpu", "timed_cpus")}
