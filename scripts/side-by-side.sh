# Sourced by scripts that run independent jobs: `side_by_side COMMAND...`
# starts the command in the background once fewer jobs run than the machine
# has cores, waiting for whichever job ends first (not the oldest: one long
# compile would hold a free core idle); `side_by_side_wait` waits for the
# rest and returns 1 if any job since the last side_by_side_wait failed.
# (scripts/beside.sh runs named steps beside a script's main line instead,
# their logs held until they are waited for.)
# Needs bash 5.1 (wait -n -p).
if [ "${BASH_VERSINFO[0]}" -lt 5 ] || { [ "${BASH_VERSINFO[0]}" -eq 5 ] && [ "${BASH_VERSINFO[1]}" -lt 1 ]; }; then
    echo "side-by-side.sh: needs bash 5.1 or later (wait -n -p); this is bash $BASH_VERSION" >&2
    exit 2
fi
side_by_side_jobs=()
side_by_side_failed=0

side_by_side() {
    local ended kept job
    while [ "${#side_by_side_jobs[@]}" -ge "$(nproc 2>/dev/null || echo 1)" ]; do
        wait -n -p ended "${side_by_side_jobs[@]}" || side_by_side_failed=1
        kept=()
        for job in "${side_by_side_jobs[@]}"; do [ "$job" = "$ended" ] || kept+=("$job"); done
        side_by_side_jobs=("${kept[@]}")
    done
    "$@" &
    side_by_side_jobs+=("$!")
}

side_by_side_wait() {
    local job failed
    for job in "${side_by_side_jobs[@]}"; do wait "$job" || side_by_side_failed=1; done
    failed="$side_by_side_failed"
    side_by_side_jobs=()
    side_by_side_failed=0
    return "$failed"
}
