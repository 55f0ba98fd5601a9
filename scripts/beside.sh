# Sourced by scripts/test: work that runs beside the script's main line, so
# that two cores stay busy where one step alone leaves one idle (a release
# build's whole-module steps, Python checks, ThreadSanitizer's short run).
#
#   beside_start NAME COMMAND...  runs COMMAND (a program or a shell function,
#                                 with errexit as in the script) in the
#                                 background, in a process group of its own,
#                                 with no standard input, its output kept
#   beside_finish NAME            waits for it, prints its output on standard
#                                 error, and returns its status
#   beside_stop_all               kills every group still running, children
#                                 included (for the script's EXIT trap)
declare -A beside_pid=() beside_log=()

beside_start() {
    local name="$1"
    shift
    beside_log[$name]="$(mktemp)"
    # Job control gives the background job its own process group, so a
    # failing main line can stop it and whatever it started (a build, a
    # valgrind run) at once.
    set -m
    "$@" </dev/null >"${beside_log[$name]}" 2>&1 &
    beside_pid[$name]=$!
    set +m
}

beside_finish() {
    local name="$1" status=0
    wait "${beside_pid[$name]}" || status=$?
    cat "${beside_log[$name]}" >&2
    rm -f "${beside_log[$name]}"
    unset "beside_pid[$name]" "beside_log[$name]"
    return "$status"
}

beside_stop_all() {
    local name
    for name in "${!beside_pid[@]}"; do
        kill -- "-${beside_pid[$name]}" 2>/dev/null || true
        rm -f "${beside_log[$name]}"
    done
}
