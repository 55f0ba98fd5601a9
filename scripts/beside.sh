# Sourced by scripts/test: work that runs beside the script's main line, so
# that two cores stay busy where one step alone leaves one idle (a release
# build's whole-module steps, Python checks, ThreadSanitizer's short run).
# Unlike scripts/side-by-side.sh (a pool of like jobs, as many as there are
# cores, their output as it comes), each job here is named, its log held
# until it is waited for, and stopped with everything it started when the
# script exits early.
#
#   beside_start NAME COMMAND...  runs COMMAND (a program or a shell function)
#                                 in the background with errexit on, in a
#                                 process group of its own, with no standard
#                                 input, its output and status kept in files;
#                                 call it as a plain command (inside an `if`,
#                                 `||` or `&&`, bash ignores errexit)
#   beside_finish NAME            waits for it, prints its output on standard
#                                 error, and returns its status
#   beside_stop_all               for the script's EXIT trap: interrupts every
#                                 one still running (SwiftPM then stops the
#                                 compile jobs and test runs it started),
#                                 kills what is left after 15 s, and prints
#                                 the end of each one's log
declare -A beside_pid=() beside_log=() beside_status=()

beside_start() {
    local name="$1"
    shift
    beside_log[$name]="$(mktemp)"
    beside_status[$name]="$(mktemp)"
    # Job control gives the background job its own process group, so a
    # failing main line can stop it and whatever it started at once. The
    # status goes to a file: it must not depend on `wait` finding the job.
    set -m
    {
        set +e
        (set -e; "$@") </dev/null >"${beside_log[$name]}" 2>&1
        echo "$?" >"${beside_status[$name]}"
    } &
    beside_pid[$name]=$!
    set +m
}

beside_finish() {
    local name="$1" status
    wait "${beside_pid[$name]}" || true
    status="$(cat "${beside_status[$name]}")"
    cat "${beside_log[$name]}" >&2
    rm -f "${beside_log[$name]}" "${beside_status[$name]}"
    unset "beside_pid[$name]" "beside_log[$name]" "beside_status[$name]"
    return "${status:-1}"
}

# Whether the job started as PID is still one of this shell's running jobs:
# the number of one that has ended may belong to another process by now.
beside_running() { [[ " $(jobs -rp | tr '\n' ' ') " == *" $1 "* ]]; }

beside_stop_all() {
    local name tries
    local -A was=()
    for name in "${!beside_pid[@]}"; do
        was[$name]=ended
        if beside_running "${beside_pid[$name]}"; then
            was[$name]=stopped
            kill -INT -- "-${beside_pid[$name]}" 2>/dev/null
        fi
    done
    for name in "${!beside_pid[@]}"; do
        for ((tries = 0; tries < 30; tries++)); do
            beside_running "${beside_pid[$name]}" || break
            sleep 0.5
        done
        beside_running "${beside_pid[$name]}" && kill -KILL -- "-${beside_pid[$name]}" 2>/dev/null
        echo "== $name (${was[$name]}, not waited for), the end of its log:" >&2
        tail -n 40 "${beside_log[$name]}" >&2
        rm -f "${beside_log[$name]}" "${beside_status[$name]}"
    done
    return 0
}
