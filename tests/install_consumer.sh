#!/usr/bin/env bash
# install_consumer -- `cmake --install` into a scratch prefix, then check what
# docs/INSTALL.md promises of the installed tree:
#   - hakmem.pc prints clean paths: exactly `-I$P/include -L$P/lib -lhakmem`
#     (pkg-config, and pkgconf when it is a different program), and
#     `--define-prefix` finds a tree moved after install;
#   - consumers built the three documented ways -- plain flags with an rpath,
#     pkg-config, find_package(hakmem) with the shared and the static target --
#     run on hakmem (tests/install/consumer.c checks hakmem_owns(malloc(...)));
#   - bin/hakmem (the wrapper): --help, --version, --stats (the report on
#     stderr), --verbose, COMMAND's exit status, an LD_PRELOAD already set
#     kept behind hakmem's, a program that knows nothing of hakmem running on
#     it (tests/install/probe.c), and all of that after the tree is moved.
# Usage: install_consumer.sh BUILD_DIR
set -euo pipefail
build=$1
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
log=$work/log
# On failure: say which step failed and show everything it printed.
trap 'rc=$?; if [ $rc -ne 0 ]; then echo "install_consumer: FAILED (exit $rc) at line $LINENO: $BASH_COMMAND" >&2; cat "$log" >&2; fi; rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
P=$work/prefix
cmake --install "$build" --prefix "$P" >>"$log" 2>&1
libdir=$(dirname "$(find "$P" -name 'libhakmem.so' | head -1)")
src=$here/install

# ---- plain flags: -I -L -Wl,-rpath (no LD_LIBRARY_PATH) ----------------------
cc "$src/consumer.c" -I"$P/include" -L"$libdir" -Wl,-rpath,"$libdir" -lhakmem -o "$work/flags"
"$work/flags" | grep -q '^consumer ok' || fail "flags consumer"

# ---- pkg-config ----------------------------------------------------------------
if command -v pkg-config >/dev/null; then
  export PKG_CONFIG_PATH=$libdir/pkgconfig
  want="-I$P/include -L$libdir -lhakmem"
  for tool in pkg-config pkgconf; do
    command -v $tool >/dev/null || continue
    got=$($tool --cflags --libs hakmem)   # pkgconf ends it with a space
    [ "${got% }" = "$want" ] || fail "$tool --cflags --libs hakmem: '$got', want '$want'"
    [ "$($tool --variable=libdir hakmem)" = "$libdir" ] || fail "$tool --variable=libdir hakmem"
  done
  # shellcheck disable=SC2046
  cc "$src/consumer.c" $(pkg-config --cflags --libs hakmem) \
    -Wl,-rpath,"$(pkg-config --variable=libdir hakmem)" -o "$work/pc"
  "$work/pc" | grep -q '^consumer ok' || fail "pkg-config consumer"
  unset PKG_CONFIG_PATH
else
  echo "SKIPPED pkg-config consumers: pkg-config is not installed"
fi

# ---- find_package(hakmem) -------------------------------------------------------
mkdir -p "$work/src"
cp "$src/consumer.c" "$work/src/"
cat >"$work/src/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.20)
project(consumer C)
find_package(hakmem REQUIRED)
add_executable(consumer_shared consumer.c)
target_link_libraries(consumer_shared hakmem::hakmem)
add_executable(consumer_static consumer.c)
target_link_libraries(consumer_static hakmem::hakmem_static)
CM
cmake -S "$work/src" -B "$work/b" -DCMAKE_PREFIX_PATH="$P" >>"$log" 2>&1
cmake --build "$work/b" >>"$log" 2>&1
"$work/b/consumer_shared" | grep -q '^consumer ok' || fail "find_package shared consumer"
"$work/b/consumer_static" | grep -q '^consumer ok' || fail "find_package static consumer"
# the shared consumer must resolve malloc from libhakmem, not libc
# (ldd's output is captured first: `ldd | grep -q` under pipefail fails at
# random when grep exits before ldd has written everything -- SIGPIPE)
deps=$(ldd "$work/b/consumer_shared")
case $deps in
  *libhakmem.so*) ;;
  *) fail "consumer_shared is not linked against libhakmem.so" ;;
esac

# ---- the wrapper: bin/hakmem ----------------------------------------------------
cc "$src/probe.c" -o "$work/probe"   # knows nothing of hakmem
"$work/probe" >/dev/null && fail "probe claims hakmem without the wrapper"
check_wrapper() {   # check_wrapper PREFIX
  local w=$1/bin/hakmem out rc
  [ -x "$w" ] || fail "$w is not installed"
  "$w" --help | grep -q '^Usage: hakmem' || fail "hakmem --help"
  "$w" --version | grep -q "^hakmem [0-9].* ($1/" || fail "hakmem --version: $("$w" --version)"
  "$w" "$work/probe" | grep -q 'on hakmem' || fail "probe is not on hakmem under the wrapper"
  out=$("$w" --stats "$work/probe" 2>"$work/stderr") || fail "hakmem --stats probe"
  [ "$out" = "probe: on hakmem" ] || fail "--stats changed the program's stdout: $out"
  grep -q 'hakmem stats' "$work/stderr" || fail "no statistics on stderr under --stats"
  "$w" --verbose "$work/probe" 2>"$work/stderr" >/dev/null || fail "hakmem --verbose probe"
  grep -q '^hakmem:' "$work/stderr" || fail "nothing from hakmem on stderr under --verbose"
  rc=0; "$w" sh -c 'exit 7' || rc=$?
  [ $rc = 7 ] || fail "hakmem did not exit with the command's status (7): $rc"
  rc=0; "$w" "$work/no-such-command" 2>/dev/null || rc=$?
  [ $rc = 127 ] || fail "a missing command: exit $rc, want 127"
  rc=0; "$w" 2>/dev/null || rc=$?
  [ $rc = 2 ] || fail "no command: exit $rc, want 2"
  # shellcheck disable=SC2016  # expanded by the command's shell
  out=$(LD_PRELOAD=libc.so.6 "$w" sh -c 'echo "$LD_PRELOAD"')
  [ "$out" = "$(find "$1" -name 'libhakmem.so.0' | head -1):libc.so.6" ] ||
    fail "LD_PRELOAD under the wrapper: $out"
}
check_wrapper "$P"

# ---- a tree moved after install ---------------------------------------------------
mv "$P" "$work/moved"
check_wrapper "$work/moved"
if command -v pkg-config >/dev/null; then
  got=$(PKG_CONFIG_PATH=$work/moved/${libdir#"$P"/}/pkgconfig pkg-config --define-prefix --cflags --libs hakmem)
  want="-I$work/moved/include -L$work/moved/${libdir#"$P"/} -lhakmem"
  [ "${got% }" = "$want" ] || fail "pkg-config --define-prefix after a move: '$got', want '$want'"
fi
echo "install_consumer: PASSED"
