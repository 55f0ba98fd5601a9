"""The check of a timed case, shared by the Python harnesses (plain NumPy, so
the torch venv's python can import it too). A library picks its kernel by
shape and thread count, so each harness checks the output of its last timed
run, at the timed shape and threads, as well as its routes' arithmetic on one
small shape first: on up to 8 rows spread from the first to the last (the row
blocks and tails a library splits M into), against sums that are exact
(integers summed in float64: every partial sum is far below 2^53)."""
import numpy as np


def sampled_rows(m, most=8):
    """Every row up to `most`, else `most` rows spread evenly over M, as
    dnnl_operands.h samples them."""
    if m <= most:
        return list(range(m))
    return [r * (m - 1) // (most - 1) for r in range(most)]


def exact_sums(x_rows, zero, w_nk):
    """Σ_k (x − zero)·w for the given rows of X (M×K) and W (N×K), exactly."""
    return (np.asarray(x_rows, dtype=np.float64) - zero) @ np.asarray(w_nk, dtype=np.float64).T


def requantized(sums, scale, bias, y_scale, y_zero, lo, hi):
    """sums·scale (+ bias, a float per column, after the scale) over y_scale,
    rounded, plus y_zero, clamped to lo…hi: the float requantization a
    requantizing route performs, in float64."""
    real = sums * scale + (0.0 if bias is None else bias)
    return np.clip(np.rint(real / y_scale) + y_zero, lo, hi)


def print_check(route, error, case=None):
    """ "check ROUTE ok" or "check ROUTE wrong WRONG CHECKED LARGEST_ERROR" for
    an array of errors already zeroed where they are within tolerance; with a
    timed case (M, K, N, THREADS), "check ROUTE M K N THREADS ok|wrong …"."""
    error = np.asarray(error)
    wrong = int(np.count_nonzero(error))
    verdict = "ok" if not wrong else f"wrong {wrong} {error.size} {float(np.max(error)):.0f}"
    where = "".join(f" {v}" for v in case) if case else ""
    print(f"check {route}{where} {verdict}", flush=True)


def print_case_check(route, m, k, n, threads, error):
    """The check line of a timed case (print_check)."""
    print_check(route, error, (m, k, n, threads))


def read_check(fields):
    """A check line (print_check's), split into words, read back: (route,
    case, verdict), case the (M, K, N, THREADS) of a timed case or None for
    the full-range check, verdict None when ok, else (values wrong, values
    checked, largest error)."""
    timed = len(fields) >= 7 and fields[2].isdigit()
    case = tuple(int(v) for v in fields[2:6]) if timed else None
    rest = fields[6:] if timed else fields[2:]
    return fields[1], case, tuple(int(float(v)) for v in rest[1:4]) if rest[0] == "wrong" else None
