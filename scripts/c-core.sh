# Sourced by the scripts that compile the C core outside SwiftPM (the kernel
# tester's builds): `src` is Sources/CQGEMM, `c_core_sources` its .c files
# (every folder), `c_core_includes` the include flags SwiftPM gives it
# (include/ and the headerSearchPath folder of Package.swift), and
# compile_each, which compiles sources side by side. Needs `root`.
src="$root/Sources/CQGEMM"
mapfile -t c_core_sources < <(find "$src" -name '*.c' | sort)
c_core_includes=(-I"$src/include" -I"$src/core")

# Compiles each source to DIR/NAME.o with the command given before `--`, as
# many at once as the machine has cores; returns 1 if any compile failed.
# Usage: compile_each DIR COMMAND... -- SOURCE...
compile_each() {
    local dir="$1" slots failed=0 f
    shift
    local command=() running=()
    while [ "$1" != "--" ]; do command+=("$1"); shift; done
    shift
    slots="$(nproc 2>/dev/null || echo 1)"
    for f in "$@"; do
        "${command[@]}" -c "$f" -o "$dir/$(basename "${f%.c}").o" &
        running+=("$!")
        if [ "${#running[@]}" -ge "$slots" ]; then
            wait "${running[0]}" || failed=1
            running=("${running[@]:1}")
        fi
    done
    for f in "${running[@]}"; do wait "$f" || failed=1; done
    return "$failed"
}
