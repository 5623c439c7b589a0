#!/usr/bin/env bash
# test.sh -- configure, build and run the test suite; exits with ctest's status.
#
# Usage: scripts/test.sh [extra ctest arguments, e.g. -R api -V]
#
# Build directory: build/ (HAKMEM_BUILD_DIR overrides; a relative one is taken
# from the repository root). Extra CMake options: HAKMEM_CMAKE_ARGS, e.g.
#   HAKMEM_BUILD_DIR=build-werror HAKMEM_CMAKE_ARGS=-DHAKMEM_WERROR=ON scripts/test.sh
# Needs only gcc, g++ and cmake (Debian: apt-get install gcc g++ cmake); a test
# that needs anything more skips itself.
set -euo pipefail

HK_ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
. "$HK_ROOT/scripts/lib.sh"

jobs=$(nproc 2>/dev/null || echo 2)
# shellcheck disable=SC2086  # HAKMEM_CMAKE_ARGS is a list of words
cmake -S "$HK_ROOT" -B "$HK_BUILD" ${HAKMEM_CMAKE_ARGS:-}
cmake --build "$HK_BUILD" -j"$jobs"
cd "$HK_BUILD"
# --no-tests=error: a suite that registered no tests is a failure, not a pass
exec ctest --output-on-failure -j2 --timeout 300 --no-tests=error "$@"
