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

# `forget_build_plan SCRATCH` drops the build plans SwiftPM keeps in a
# scratch path (a description.json per configuration) before a package that
# depends on this one by path (Examples/SentenceEmbeddings, Fuzz,
# Allocations) is built there: such a build keeps the dependency's list of
# source files from its last plan, so a C file added to the library since is
# not compiled and the link fails with undefined references. Planning again
# takes a second or two; nothing built is thrown away.
forget_build_plan() { rm -f "$1"/*/description.json; }
