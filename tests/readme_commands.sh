#!/usr/bin/env bash
# readme_commands -- run the commands README.md and docs/INSTALL.md show,
# exactly as written: every ```sh block of a file, in order, in one
# `bash -euo pipefail` (as a reader pastes them into one terminal).
#
# Convention for the documents (other tests and writers rely on it):
#   - a ```sh block runs, unless the line just before its fence is
#       <!-- readme-test: skip REASON -->
#     (for what would install into the system, use sudo or apt, rebuild the
#     tree or run the whole suite -- give each such block a twin that runs,
#     e.g. the same install into $HOME/.local);
#   - output, and commands not meant to be run, go in ```text (or another
#     language's) blocks, which are never run.
# Where they run: a scratch copy of the source tree (a directory of links to
# the repository's files, with build/ a link to BUILD_DIR and no top-level
# CMakeLists.txt, so that nothing can reconfigure BUILD_DIR from there), with
# HOME a scratch directory (PREFIX=$HOME/.local stays in it) and
# HAKMEM_BUILD_DIR=BUILD_DIR (scripts/hakmem-run uses the built library).
# Nothing is installed outside the scratch directory, nothing is rebuilt.
#
# Usage: readme_commands.sh BUILD_DIR [DOCUMENT...]   (default: README.md docs/INSTALL.md)
set -euo pipefail
build=$(cd "$1" && pwd)
shift
root=$(cd "$(dirname "$0")/.." && pwd)
[ $# -gt 0 ] || set -- README.md docs/INSTALL.md
work=$(mktemp -d)
log=$work/log
: >"$log"
# shellcheck disable=SC2154  # st is set inside the trap
trap 'st=$?; if [ $st -ne 0 ]; then echo "readme_commands: FAILED (exit $st)" >&2; cat "$log" >&2; fi; rm -rf "$work"' EXIT

# The scratch source tree.
tree=$work/tree
mkdir -p "$tree" "$work/home"
for f in "$root"/* "$root"/.[!.]*; do
  case ${f##*/} in CMakeLists.txt|build*|.git) continue ;; esac
  [ -e "$f" ] && ln -s "$f" "$tree/${f##*/}"
done
ln -s "$build" "$tree/build"

# extract DOCUMENT: print its runnable ```sh blocks as one script, each block
# announced on stderr with its line; say on stdout which blocks are skipped.
extract() {
  awk -v doc="$1" -v script="$2" '
    /^```sh[ \t]*$/ && !inblock {
      inblock = 1; start = NR
      if (prev ~ /^<!-- readme-test: skip [^ ]/) {
        skip = 1; reason = prev; sub(/^<!-- readme-test: skip /, "", reason); sub(/ *-->.*/, "", reason)
        printf "skipped %s:%d: %s\n", doc, NR, reason
      } else {
        skip = 0; runs++
        printf "echo \"### %s:%d\" >&2\n", doc, NR > script
      }
      prev = $0; next
    }
    /^```/ && inblock { inblock = 0; prev = $0; next }
    inblock && !skip { print > script }
    !inblock && prev ~ /^<!-- readme-test: skip/ && $0 !~ /^```sh/ {
      printf "%s:%d: a readme-test marker not followed by a ```sh fence\n", doc, NR - 1; bad = 1
    }
    { prev = $0 }
    END { printf "%s: %d block(s) to run\n", doc, runs; exit bad }' "$root/$1"
}

status=0
for doc in "$@"; do
  script=$work/$(echo "$doc" | tr / _).sh
  : >"$script"
  extract "$doc" "$script"
  echo "=== $doc" >>"$log"
  # a clean environment for what the reader would type
  if ! (cd "$tree" && env -u LD_PRELOAD -u PKG_CONFIG_PATH -u CMAKE_PREFIX_PATH \
          HOME="$work/home" HAKMEM_BUILD_DIR="$build" \
          bash -euo pipefail "$script" >>"$log" 2>&1); then
    echo "FAIL: $doc: the block after the last '###' line in the log below failed" >&2
    status=1
    break
  fi
done
[ $status = 0 ] || exit 1
cat "$log"   # what the commands printed (ctest -V shows it)
echo "readme_commands: PASSED"
