#!/usr/bin/env bash
# install_consumer -- `cmake --install` into a scratch prefix, then build and
# run consumers the three documented ways: find_package(hakmem) with the
# shared and the static target, and pkg-config. Each consumer checks that it
# really runs on hakmem (hakmem_version() and a malloc/free round trip).
# Usage: install_consumer.sh BUILD_DIR
set -euo pipefail
build=$1
work=$(mktemp -d)
log=$work/log
# On failure: say which step failed and show everything it printed.
trap 'rc=$?; if [ $rc -ne 0 ]; then echo "install_consumer: FAILED (exit $rc) at line $LINENO: $BASH_COMMAND" >&2; cat "$log" >&2; fi; rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >>"$log" 2>&1

mkdir -p "$work/src"
cat >"$work/src/consumer.c" <<'C'
#include <hakmem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(void) {
  char *p = malloc(100);
  if (!p) return 1;
  memset(p, 7, 100);
  free(p);
  if (strcmp(hakmem_version(), "0.0.0") <= 0) return 2;
  printf("consumer ok %s\n", hakmem_version());
  return 0;
}
C
cat >"$work/src/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.20)
project(consumer C)
find_package(hakmem REQUIRED)
add_executable(consumer_shared consumer.c)
target_link_libraries(consumer_shared hakmem::hakmem)
add_executable(consumer_static consumer.c)
target_link_libraries(consumer_static hakmem::hakmem_static)
CM
cmake -S "$work/src" -B "$work/b" -DCMAKE_PREFIX_PATH="$work/prefix" >>"$log" 2>&1
cmake --build "$work/b" >>"$log" 2>&1
libdir=$(dirname "$(find "$work/prefix" -name 'libhakmem.so' | head -1)")
LD_LIBRARY_PATH=$libdir "$work/b/consumer_shared"
"$work/b/consumer_static"
# the shared consumer must resolve malloc from libhakmem, not libc
# (ldd's output is captured first: `ldd | grep -q` under pipefail fails at
# random when grep exits before ldd has written everything -- SIGPIPE)
deps=$(LD_LIBRARY_PATH=$libdir ldd "$work/b/consumer_shared")
case $deps in
  *libhakmem.so*) ;;
  *) echo "FAIL: consumer_shared is not linked against libhakmem.so" >&2; exit 1 ;;
esac

if command -v pkg-config >/dev/null; then
  pc=$(dirname "$(find "$work/prefix" -name hakmem.pc | head -1)")
  # shellcheck disable=SC2046
  cc "$work/src/consumer.c" $(PKG_CONFIG_PATH=$pc pkg-config --cflags --libs hakmem) -o "$work/pc"
  LD_LIBRARY_PATH=$libdir "$work/pc"
else
  echo "SKIPPED pkg-config consumer: pkg-config is not installed"
fi
echo "install_consumer: PASSED"
