# Sourced by the scripts that compile the C core outside SwiftPM (the kernel
# tester's builds): `src` is Sources/CQGEMM, `c_core_sources` its .c files
# (every folder), `c_core_includes` the include flags SwiftPM gives it
# (include/ and the headerSearchPath folder of Package.swift). Needs `root`.
src="$root/Sources/CQGEMM"
mapfile -t c_core_sources < <(find "$src" -name '*.c' | sort)
c_core_includes=(-I"$src/include" -I"$src/core")
