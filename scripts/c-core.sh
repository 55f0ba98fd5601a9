# Sourced by the scripts that compile the C core outside SwiftPM (the kernel
# tester's builds): `src` is Sources/CQGEMM, `c_core_sources` its .c files
# (every folder, the slowest to compile first), `c_core_includes` the include
# flags SwiftPM gives it (include/ and the headerSearchPath folder of
# Package.swift), and compile_each, which compiles sources side by side
# (scripts/side-by-side.sh); for planted faults, plant_in_copy and
# objects_except. Needs `root`.
src="$root/Sources/CQGEMM"
# The tile files (kernels/*/kernel_*.c) first, the 512-bit one foremost: each
# takes several times as long to compile as any other file, so started first
# they run beside the short ones instead of after them.
mapfile -t c_core_sources < <(
    find "$src" -name 'kernel_*.c' | sort | awk '/avx512vnni/ { print; next } { rest = rest $0 "\n" } END { printf "%s", rest }'
    find "$src" -name '*.c' ! -name 'kernel_*.c' | sort
)
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

# For a planted fault: a copy of the C core in DIR with FILE (a path below
# Sources/CQGEMM) edited by the sed EXPRESSION; exits with a message from
# WHO when the edit no longer changes the file (the script needs updating).
# Usage: plant_in_copy WHO DIR FILE EXPRESSION
plant_in_copy() {
    local who="$1" dir="$2" file="$3" expr="$4"
    rm -rf "$dir"; mkdir -p "$dir"; cp -r "$src"/. "$dir/"
    sed -i "$expr" "$dir/$file"
    if cmp -s "$src/$file" "$dir/$file"; then
        echo "$who: the planted fault no longer applies to $file (update this script)" >&2
        exit 1
    fi
}

# The objects in WORK but NAME.o, one a line: what a mutant links beside its
# own rebuilt NAME.o. Usage: mapfile -t objs < <(objects_except WORK NAME.o)
objects_except() {
    local o
    for o in "$1"/*.o; do [ "$(basename "$o")" = "$2" ] || echo "$o"; done
}
