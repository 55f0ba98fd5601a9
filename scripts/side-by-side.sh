# Sourced by scripts that run independent jobs: `side_by_side COMMAND...`
# starts the command in the background, first waiting for the oldest job
# while as many run as the machine has cores; `side_by_side_wait` waits for
# the rest and returns 1 if any job since the last side_by_side_wait failed.
side_by_side_jobs=()
side_by_side_failed=0

side_by_side() {
    if [ "${#side_by_side_jobs[@]}" -ge "$(nproc 2>/dev/null || echo 1)" ]; then
        wait "${side_by_side_jobs[0]}" || side_by_side_failed=1
        side_by_side_jobs=("${side_by_side_jobs[@]:1}")
    fi
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
