#!/bin/sh
# real_programs.sh -- run real programs with and without LD_PRELOAD=libhakmem
# and require identical stdout and exit status.
#
# Usage: real_programs.sh /path/to/libhakmem.so
#
# Programs: python3, perl, sort, git, gcc, awk, sed, tar -- each only if
# present (missing ones are reported as SKIPPED).  Each run is bounded by
# `timeout 60`.  Exit status: 0 all present programs matched, 1 a mismatch
# (or hakmem could not be preloaded), 77 every program was missing (CTest
# SKIP_RETURN_CODE).

LIB=$1
if [ -z "$LIB" ] || [ ! -f "$LIB" ]; then
    echo "real_programs: FAIL: library '$LIB' does not exist" >&2
    exit 1
fi
case $LIB in /*) ;; *) LIB=$(pwd)/$LIB ;; esac

TIMEOUT=60
have_timeout=0
command -v timeout >/dev/null 2>&1 && have_timeout=1

WORK=$(mktemp -d "${TMPDIR:-/tmp}/hakmem_real.XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT INT TERM

# The preloaded library must really be mapped into a preloaded process.
if ! LD_PRELOAD=$LIB grep -q hakmem /proc/self/maps 2>"$WORK/preload.err"; then
    echo "real_programs: FAIL: LD_PRELOAD=$LIB does not load the library:" >&2
    cat "$WORK/preload.err" >&2
    exit 1
fi

indent() {
    while IFS= read -r line || [ -n "$line" ]; do
        printf '  | %s\n' "$line"
    done
}

passed=""
failed=""
skipped=""

# run_case NAME REQUIRED_PROGRAMS SCRIPT
#   SCRIPT is run by /bin/sh in a fresh directory, once without and once with
#   LD_PRELOAD (inherited by every process it starts).
run_case() {
    name=$1
    progs=$2
    script=$3
    for p in $progs; do
        if ! command -v "$p" >/dev/null 2>&1; then
            echo "SKIPPED $name: '$p' not found"
            skipped="$skipped $name"
            return 0
        fi
    done
    for mode in plain hakmem; do
        dir=$WORK/$name.$mode
        mkdir -p "$dir"
        # identical working directory name in both runs, so outputs that
        # mention the cwd do not differ
        rm -rf "$WORK/run"
        mkdir -p "$WORK/run"
        if [ $mode = hakmem ]; then
            pre="env LD_PRELOAD=$LIB"
        else
            pre="env"
        fi
        to=""
        [ $have_timeout = 1 ] && to="timeout $TIMEOUT"
        (cd "$WORK/run" && $to $pre /bin/sh -c "$script") \
            >"$dir/out" 2>"$dir/err"
        echo $? >"$dir/rc"
    done
    rc_plain=$(cat "$WORK/$name.plain/rc")
    rc_hak=$(cat "$WORK/$name.hakmem/rc")
    if [ "$rc_plain" != "$rc_hak" ] ||
        ! cmp -s "$WORK/$name.plain/out" "$WORK/$name.hakmem/out"; then
        echo "FAIL $name: with LD_PRELOAD exit status $rc_hak (expected $rc_plain)" \
             "and/or stdout differs"
        [ "$rc_hak" = 124 ] && echo "  (timed out after ${TIMEOUT}s under hakmem)"
        echo "  --- stdout without hakmem (first 20 lines):"
        head -n 20 "$WORK/$name.plain/out" | indent
        echo "  --- stdout with hakmem (first 20 lines):"
        head -n 20 "$WORK/$name.hakmem/out" | indent
        if command -v diff >/dev/null 2>&1; then
            echo "  --- diff (first 20 lines):"
            diff "$WORK/$name.plain/out" "$WORK/$name.hakmem/out" | head -n 20 | indent
        fi
        echo "  --- stderr with hakmem (last 20 lines):"
        tail -n 20 "$WORK/$name.hakmem/err" | indent
        failed="$failed $name"
    elif grep -q "hakmem" "$WORK/$name.hakmem/err" &&
        ! grep -q "hakmem" "$WORK/$name.plain/err"; then
        echo "FAIL $name: identical output, but hakmem wrote diagnostics to stderr:"
        grep "hakmem" "$WORK/$name.hakmem/err" | head -n 10 | indent
        failed="$failed $name"
    elif [ "$rc_plain" != 0 ]; then
        # both failed the same way: the test command itself is broken here
        echo "FAIL $name: command fails even without hakmem (exit $rc_plain):"
        tail -n 10 "$WORK/$name.plain/err" | indent
        failed="$failed $name"
    else
        echo "ok   $name ($(wc -l <"$WORK/$name.plain/out" | tr -d ' ') lines of identical output)"
        passed="$passed $name"
    fi
}

run_case python3 "python3" '
python3 -c "
import hashlib
d = {}
for i in range(300000):
    d[i] = [i, str(i), i * 0.5]
s = 0
for k, v in d.items():
    s = (s * 31 + k + len(v[1])) % 1000000007
h = hashlib.sha256()
for k in range(0, 300000, 7):
    h.update(repr(d[k]).encode())
del d
big = [bytes(1000) for _ in range(20000)]
print(s, h.hexdigest(), sum(len(b) for b in big))
"'

run_case perl "perl" '
perl -e "
my %h;
for my \$i (0..199999) { \$h{\"key\$i\"} = [\$i, \"v\" x (\$i % 50)]; }
my \$s = 0;
for my \$k (sort keys %h) { \$s = (\$s * 31 + length(\$k) + \$h{\$k}[0]) % 1000000007; }
my @a = map { join(q(,), 1..(\$_ % 100)) } 1..20000;
print scalar(keys %h), q( ), \$s, q( ), length(join(q(), @a)), qq(\n);
"'

run_case sort "sort awk cksum head tail wc" '
awk "BEGIN { srand(42); for (i = 0; i < 200000; i++) printf \"%d\n\", int(rand() * 1000000000) }" > nums.txt
sort -n nums.txt > sorted.txt
cksum < sorted.txt
head -n 3 sorted.txt
tail -n 3 sorted.txt
sort -u -k1,1 nums.txt | wc -l'

run_case git "git" '
git --version
export GIT_AUTHOR_DATE="2020-01-01T00:00:00Z" GIT_COMMITTER_DATE="2020-01-01T00:00:00Z"
export HOME=$(pwd) GIT_CONFIG_NOSYSTEM=1
git init -q repo && cd repo &&
i=0
while [ $i -lt 200 ]; do echo "line $i of file" > "f$i.txt"; i=$((i+1)); done
git add . &&
git -c user.name=Test -c user.email=test@example.com commit -q -m "initial commit" &&
i=0
while [ $i -lt 200 ]; do echo "change $i" >> "f$i.txt"; i=$((i+3)); done
git -c user.name=Test -c user.email=test@example.com commit -q -a -m "second" &&
git log --format="%H %s" &&
git diff --stat HEAD~1 | tail -n 1 &&
git gc -q && git fsck --no-progress 2>&1 && git count-objects -v | grep -v size'

run_case gcc "gcc" '
cat > prog.c <<EOF
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(void) {
    unsigned long s = 0;
    for (int i = 1; i <= 100000; i++) {
        char *p = malloc((size_t)(i % 1000) + 1);
        memset(p, i & 0xff, (size_t)(i % 1000) + 1);
        s += (unsigned char)p[i % 1000];
        free(p);
    }
    printf("sum=%lu\n", s);
    return 0;
}
EOF
gcc -O2 -o prog prog.c && ./prog'

run_case awk "awk" '
awk "BEGIN { for (i = 0; i < 200000; i++) { k = \"k\" (i % 5000); a[k] = a[k] \"x\"; c[i] = i * 3 }
             n = 0; for (k in a) n += length(a[k]); s = 0; for (i in c) s += c[i];
             print n, s }"'

run_case sed "sed awk cksum" '
awk "BEGIN { for (i = 0; i < 100000; i++) print \"line\", i, \"alpha beta gamma\" }" > in.txt
sed -e "s/alpha/ALPHA/g" -e "/5 alpha/d" -e "s/\\([0-9]*\\) ALPHA/<\\1>/" in.txt | cksum
sed -n "\$p" in.txt'

run_case tar "tar sort cksum head wc" '
mkdir -p src/sub
i=0
while [ $i -lt 300 ]; do echo "file $i content" > "src/sub/f$i"; i=$((i+1)); done
head -c 3000000 /dev/zero > src/zeros
tar --sort=name --mtime=2020-01-01 --owner=0 --group=0 --numeric-owner -cf a.tar src 2>/dev/null || tar -cf a.tar src
tar -tf a.tar | sort | cksum
mkdir out && tar -xf a.tar -C out && cat out/src/sub/f299 && wc -c < out/src/zeros'

echo
echo "real_programs: passed:${passed:- none}"
echo "real_programs: skipped:${skipped:- none}"
echo "real_programs: failed:${failed:- none}"
if [ -n "$failed" ]; then
    exit 1
fi
if [ -z "$passed" ]; then
    echo "real_programs: every program is missing -> SKIPPED"
    exit 77
fi
exit 0
