# Sourced by scripts that build before they use what they built:
# `quietly COMMAND...` runs the command, shows what it printed besides
# progress lines (warnings, errors) on standard error, and returns its
# status, so that a failed build stops the script instead of letting it use
# what an earlier build left. `quiet_swift_build ARGS...` is
# `quietly swift build ARGS...`.
quietly() {
    local log status=0
    log="$(mktemp)"
    "$@" >"$log" 2>&1 || status=$?
    grep -Ev '^\[[0-9]+/[0-9]+\]|^Building|^Build of|^Compiling|^Write|^Emitting|^Fetching|^Fetched|^Computing|^Computed|^Creating|^Working|^Updating|^Updated' \
        "$log" >&2 || true
    rm -f "$log"
    [ "$status" -eq 0 ] || echo "$(basename "$0"): $* failed" >&2
    return "$status"
}

quiet_swift_build() { quietly swift build "$@"; }
