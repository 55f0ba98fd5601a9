# Sourced by scripts that build before they run what they built:
# `quiet_swift_build ARGS...` runs `swift build ARGS...`, shows what it
# printed besides progress lines (warnings, errors) on standard error, and
# returns its status, so that a failed build stops the script instead of
# letting it run a binary left by an earlier build.
quiet_swift_build() {
    local log status=0
    log="$(mktemp)"
    swift build "$@" >"$log" 2>&1 || status=$?
    grep -Ev '^\[[0-9]+/[0-9]+\]|^Building|^Build of|^Compiling|^Write|^Fetching|^Fetched|^Computing|^Computed|^Creating|^Working|^Updating|^Updated' \
        "$log" >&2 || true
    rm -f "$log"
    [ "$status" -eq 0 ] || echo "$(basename "$0"): swift build $* failed" >&2
    return "$status"
}
