# Sourced by the scripts that compile the C core outside SwiftPM (the kernel
# tester's builds): `src` is Sources/CQGEMM, `c_core_sources` its .c files
# (every folder), `c_core_includes` the include flags SwiftPM gives it
# (include/ and the headerSearchPath folder of Package.swift), and
# compile_each, which compiles sources side by side (scripts/side-by-side.sh).
# Needs `root`.
src="$root/Sources/CQGEMM"
mapfile -t c_core_sources < <(find "$src" -name '*.c' | sort)
c_core_includes=(-I"$src/include" -I"$src/core")

source "$root/scripts/side-by-side.sh"

# Compiles each source to DIR/NAME.o with the command given before `--`,
# side by side; returns 1 if any compile failed.
# Usage: compile_each DIR COMMAND... -- SOURCE...
compile_each() {
    local dir="$1" f
    shift
    local command=()
    while [ "$1" != "--" ]; do command+=("$1"); shift; done
    shift
    for f in "$@"; do side_by_side "${command[@]}" -c "$f" -o "$dir/$(basename "${f%.c}").o"; done
    side_by_side_wait
}
