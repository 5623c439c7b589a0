# real-programs.sh -- the real programs that scripts/larson.sh's `real`
# profile times under each allocator (sourced, not run; scripts/real-compare.sh
# runs the same list through larson.sh). The one list of them: add a program
# here and both scripts time it. Sets nothing but HK_REAL_* variables and
# hk_real_* functions, and needs nothing sourced before it.
#
# Each program's size (element count) is given at scale 1 -- one to three
# seconds per run on a 2-core machine -- and multiplied by the scale. A run
# is a shell command (sh -c) in a scratch directory, after an untimed setup
# command there (an input file). A program that is not on PATH, or that
# HAKMEM_REAL_HIDE (comma-separated program names) hides, is missing: the
# runner skips its workload and says why -- HAKMEM_REAL_HIDE is how to see
# that on a machine that has them all.

HK_REAL_ORDER=(python_objects python_json perl_hash sort sqlite_index)
declare -A HK_REAL_DESC=(
  [python_objects]="python3: a dict of 1M str keys to 9-element lists (object churn)"
  [python_json]="python3: json.dumps of 300k small dicts, then 3 json.loads of it"
  [perl_hash]="perl: a hash of 1M keys to one-element arrays"
  [sort]="sort -n of 2M random integers (a file written before the timed run)"
  [sqlite_index]="sqlite3: 300k random rows inserted into a table with two indexes, then a query"
)

# hk_real_case NAME SCALE: set HK_REAL_NEEDS (the programs it runs),
# HK_REAL_SETUP (untimed shell command, may be empty) and HK_REAL_CMD (the
# timed shell command), at SCALE times the sizes above; returns 1 for an
# unknown NAME.
hk_real_case() {
  HK_REAL_SETUP=
  case $1 in
    python_objects)
      HK_REAL_NEEDS=python3
      HK_REAL_CMD="python3 -c 'd = {str(i): [i] * 9 for i in range($(hk_real_count 1000000 "$2"))}; print(len(d))'" ;;
    python_json)
      HK_REAL_NEEDS=python3
      HK_REAL_CMD="python3 -c 'import json; s = json.dumps([{\"a\": i, \"b\": str(i) * 3} for i in range($(hk_real_count 300000 "$2"))]); print(sum(len(json.loads(s)) for _ in range(3)))'" ;;
    perl_hash)
      HK_REAL_NEEDS=perl
      HK_REAL_CMD="perl -e 'my %h; \$h{\$_} = [\$_] for 1..$(hk_real_count 1000000 "$2"); print scalar(keys %h), \"\\n\"'" ;;
    sort)
      HK_REAL_NEEDS="sort tail"
      HK_REAL_SETUP="awk 'BEGIN { srand(7); for (i = 0; i < $(hk_real_count 2000000 "$2"); i++) print int(rand() * 1e9) }' >numbers.txt"
      HK_REAL_CMD="sort -n numbers.txt | tail -n 1" ;;
    sqlite_index)
      HK_REAL_NEEDS=sqlite3
      HK_REAL_CMD="rm -f t.db; sqlite3 t.db 'create table t(a integer, b text); create index ia on t(a); create index ib on t(b); with recursive c(x) as (select 1 union all select x + 1 from c where x < $(hk_real_count 300000 "$2")) insert into t select abs(random()) % 100000, hex(randomblob(8)) from c; select count(*) from t where a < 500;'" ;;
    *) return 1 ;;
  esac
}
# hk_real_count BASE SCALE: the element count, BASE * SCALE, at least 1
hk_real_count() { awk -v b="$1" -v s="$2" 'BEGIN { v = int(b * s + 0.5); print (v < 1 ? 1 : v) }'; }

# hk_real_missing NAME: print the first program NAME needs that is missing
# (not on PATH, or named in HAKMEM_REAL_HIDE); returns 1 when none is.
hk_real_missing() {
  local p
  hk_real_case "$1" 1 || return 1
  for p in $HK_REAL_NEEDS; do
    if [[ ,${HAKMEM_REAL_HIDE:-}, == *,"$p",* ]] || ! command -v "$p" >/dev/null; then
      echo "$p"; return 0
    fi
  done
  return 1
}
