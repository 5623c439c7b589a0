#!/usr/bin/env bash
# deb_package -- build the Debian package with CPack from an already built
# tree and install it with dpkg into a scratch root (never into the system):
#   - `dpkg-deb -I`: package hakmem, the project's version, a maintainer, a
#     description, Depends on libc6;
#   - `dpkg-deb -c`: the wrapper, the library and its soname link, the header,
#     hakmem.pc and the CMake package; no test or benchmark program;
#   - `dpkg --root=R -i` installs it (maintainer scripts run without chroot,
#     against a stub ldconfig, so nothing outside R changes) and `dpkg -s`
#     says "install ok installed";
#   - R/usr/bin/hakmem runs a program that knows nothing of hakmem on hakmem,
#     and consumers built with pkg-config (--define-prefix: the .pc says /usr)
#     and find_package(hakmem) against R/usr run on hakmem.
# Exits 77 (CTest: skipped) when cpack, dpkg or dpkg-deb is missing.
# Usage: deb_package.sh BUILD_DIR [CPACK]
set -euo pipefail
build=$(cd "$1" && pwd)
cpack=${2:-cpack}
here=$(cd "$(dirname "$0")" && pwd)
for tool in "$cpack" dpkg dpkg-deb cc; do
  command -v "$tool" >/dev/null || { echo "SKIPPED deb_package: $tool is not installed"; exit 77; }
done
work=$(mktemp -d)
log=$work/log
# shellcheck disable=SC2154  # rc is set inside the trap
trap 'rc=$?; if [ $rc -ne 0 ]; then echo "deb_package: FAILED (exit $rc) at line $LINENO: $BASH_COMMAND" >&2; cat "$log" >&2; fi; rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# ---- build the package (into $work: nothing is written to the build tree but
# what `make preinstall` rebuilds, and the tree is already built) -------------
(cd "$build" && "$cpack" -G DEB -B "$work/pkg" >>"$log" 2>&1)
debs=("$work"/pkg/hakmem_*.deb)
if [ ${#debs[@]} != 1 ] || [ ! -f "${debs[0]}" ]; then fail "cpack made no single hakmem_*.deb: ${debs[*]}"; fi
deb=${debs[0]}
echo "built $(basename "$deb")"

# ---- metadata and contents ----------------------------------------------------
info=$(dpkg-deb -I "$deb")
version=$(sed -n 's/^project(hakmem VERSION \([0-9.]*\).*/\1/p' "$here/../CMakeLists.txt")
for want in "Package: hakmem" "Version: $version" "Maintainer: ." "Description: ." "Depends: .*libc6"; do
  grep -q "^ $want" <<<"$info" || fail "dpkg-deb -I: no '$want' in
$info"
done
contents=$(dpkg-deb -c "$deb" | awk '{print $6}')   # the name, not a link's target
for want in ./usr/bin/hakmem ./usr/lib/libhakmem.so.0 ./usr/lib/libhakmem.so ./usr/lib/libhakmem_api.so.0 \
            ./usr/include/hakmem.h ./usr/lib/pkgconfig/hakmem.pc ./usr/lib/cmake/hakmem/hakmemConfig.cmake; do
  grep -qx -- "$want" <<<"$contents" || fail "dpkg-deb -c: $want missing"
done
! grep -E 'test|bench|counters|secure' <<<"$contents" || fail "dpkg-deb -c: a test or benchmark file is packaged"

# ---- install into a scratch root ------------------------------------------------
R=$work/root
mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates" "$work/stub"
: >"$R/var/lib/dpkg/status"
printf '#!/bin/sh\nexit 0\n' >"$work/stub/ldconfig"   # the postinst's ldconfig
chmod +x "$work/stub/ldconfig"
PATH=$work/stub:$PATH dpkg --root="$R" --force-script-chrootless --force-depends \
  --force-not-root --log=/dev/null -i "$deb" >>"$log" 2>&1
dpkg --root="$R" -s hakmem | grep -q '^Status: install ok installed' || fail "dpkg -s hakmem"

cc "$here/install/probe.c" -o "$work/probe"
"$R/usr/bin/hakmem" "$work/probe" | grep -q 'on hakmem' || fail "the installed wrapper does not run the probe on hakmem"
"$R/usr/bin/hakmem" --stats "$work/probe" 2>&1 >/dev/null | grep -q 'hakmem stats' || fail "hakmem --stats"

if command -v pkg-config >/dev/null; then
  flags=$(PKG_CONFIG_PATH=$R/usr/lib/pkgconfig pkg-config --define-prefix --cflags --libs hakmem)
  [ "${flags% }" = "-I$R/usr/include -L$R/usr/lib -lhakmem" ] || fail "pkg-config in the scratch root: $flags"
  # shellcheck disable=SC2086
  cc "$here/install/consumer.c" $flags -Wl,-rpath,"$R/usr/lib" -o "$work/pc"
  "$work/pc" | grep -q '^consumer ok' || fail "pkg-config consumer"
fi
mkdir -p "$work/src"
cp "$here/install/consumer.c" "$work/src/"
printf 'cmake_minimum_required(VERSION 3.20)\nproject(consumer C)\nfind_package(hakmem REQUIRED)\nadd_executable(consumer consumer.c)\ntarget_link_libraries(consumer hakmem::hakmem)\n' \
  >"$work/src/CMakeLists.txt"
cmake -S "$work/src" -B "$work/b" -DCMAKE_PREFIX_PATH="$R/usr" >>"$log" 2>&1
cmake --build "$work/b" >>"$log" 2>&1
"$work/b/consumer" | grep -q '^consumer ok' || fail "find_package consumer"
echo "deb_package: PASSED"
