# larson-compare.awk -- one allocator in two larson.sh result files, side by
# side: `scripts/larson.sh compare A.json B.json [--alloc NAME]`.
# Input: the two files flattened by hk_json_flat (scripts/lib.sh), A first;
# range(), fmt_val() and field() come from larson-common.awk.
# Variables: alloc (the allocator), name_a and name_b (the files as the user
# named them). larson.sh has checked that both exist, are result files of
# one profile and hold the allocator.
#
# Per workload found in both: the medians in A and B and B/A, for throughput
# and peak RSS, and a verdict by the noise rule of larson.sh's table
# (scripts/larson-report.awk) with A in the reference's place:
#   low = min(B) / max(A),  high = max(B) / min(A);
# "within noise" when low <= 1 <= high, otherwise faster/slower (throughput)
# or larger/smaller (peak RSS). Last, the geometric mean of the ratios.
# A workload timed in seconds (the real profile) is compared by speed, A's
# time / B's time, so that > 1 is faster as for throughput: its range over
# the runs is min(A)/max(B) to max(A)/min(B), and a slower time is "slower".

BEGIN { FS = "\t" }
FNR == 1 { f = (FILENAME == ARGV[1] ? "A" : "B") }
{
  n = split($1, p, "/")
  if (p[1] == "results" && n >= 3) {
    r = p[2] + 0
    if (r + 1 > nres[f]) nres[f] = r + 1
    if (n == 4) S[f, r, p[3]] = S[f, r, p[3]] " " $2
    else V[f, r, p[3]] = $2
  } else if (n == 1) {
    T[f, $1] = $2
  }
}



# cmp(W, M): metric M (0 throughput or time, 1 peak RSS) of workload W, A
# against B; sets MA, MB (medians, "" when missing), RAT (B/A, or A/B for
# seconds) and VERDICT; 1 when RAT is set
function cmp(w, m,    ra, rb, mf, sf, alo, ahi, met) {
  ra = row["A", w]; rb = row["B", w]
  met = metric_of(V["A", ra, "metric"])
  mf = (m == 0 ? field("median", met) : "peak_rss_kib")
  sf = (m == 0 ? field("samples", met) : "samples_rss_kib")
  MA = V["A", ra, mf]; MB = V["B", rb, mf]; VERDICT = ""
  if (MA == "" || MB == "" || MA + 0 <= 0 || MB + 0 <= 0) return 0
  RAT = (m == 0 && met == "seconds" ? MA / MB : MB / MA)
  range(S["A", ra, sf], MA); alo = LO; ahi = HI
  range(S["B", rb, sf], MB)
  if (alo <= 0) return 0   # B/A's range contains 1 exactly when A/B's does
  if (LO / ahi <= 1 && HI / alo >= 1) VERDICT = "within noise"
  else if (m == 0) VERDICT = (RAT > 1 ? "faster" : "slower")
  else VERDICT = (RAT > 1 ? "larger" : "smaller")
  return 1
}

function describe(f, name) {
  return "# " f ": " name " (hakmem " T[f, "hakmem_revision"] ", " T[f, "date"] ", " \
    T[f, "reps"] " runs per workload, scale " T[f, "scale"] ")"
}

END {
  nw = 0
  for (g = 0; g < 2; g++) {
    f = (g == 0 ? "A" : "B")
    for (r = 0; r < nres[f]; r++) {
      if (V[f, r, "allocator"] != alloc) continue
      w = V[f, r, "workload"]
      row[f, w] = r
      if (!(w in seen)) { seen[w] = 1; wl[nw++] = w; nmet[metric_of(V[f, r, "metric"])]++ }
    }
  }
  ww = 18
  for (i = 0; i < nw; i++) if (length(wl[i]) >= ww) ww = length(wl[i]) + 1
  fmt = "%-" ww "s %10s %10s %6s  %-12s  %10s %10s %6s  %s\n"
  # the first columns: Mops/s, seconds, or both (then seconds say "s")
  unit = (nmet["seconds"] == 0 ? "Mops/s" : nmet["mops"] == 0 ? "s" : "Mops|s")
  rhead = (nmet["seconds"] == 0 ? "B/A" : nmet["mops"] == 0 ? "A/B" : "x")
  vhead = (nmet["seconds"] == 0 ? "throughput" : nmet["mops"] == 0 ? "time" : "speed")

  print describe("A", name_a)
  print describe("B", name_b)
  print "# " alloc ", profile " T["A", "profile"] ": medians of the runs; B/A = ratio of the medians" \
    (nmet["seconds"] ? " (A/B for seconds)" : "")
  print "# within noise: the ratio's range over the runs, min(B)/max(A) to max(B)/min(A), contains 1"
  if (nmet["seconds"] > 0)
    print "# seconds (wall time, lower is better): the ratio is A's time / B's time, a speed (> 1: B is faster)"
  if (T["A", "scale"] != T["B", "scale"])
    print "# note: the runs' lengths differ (scale " T["A", "scale"] " and " T["B", "scale"] "): peak RSS may differ for that alone"
  printf fmt, "workload", "A " unit, "B " unit, rhead, vhead, "A RSS_MiB", "B RSS_MiB", "B/A", "peak RSS"
  for (i = 0; i < nw; i++) {
    w = wl[i]
    if (!(("A", w) in row)) { only_b = only_b (only_b == "" ? "" : ", ") w; continue }
    if (!(("B", w) in row)) { only_a = only_a (only_a == "" ? "" : ", ") w; continue }
    ok = cmp(w, 0)
    met = metric_of(V["A", row["A", w], "metric"]); sfx = (unit == "Mops|s" && met == "seconds" ? "s" : "")
    ma = (MA == "" ? "FAIL" : fmt_val(met, MA) sfx); mb = (MB == "" ? "FAIL" : fmt_val(met, MB) sfx)
    mr = (ok ? sprintf("%.2f", RAT) : "-"); mv = VERDICT
    if (ok) { lsum[0] += log(RAT); cnt[0]++; if (mv != "within noise") out[0]++ }
    ok = cmp(w, 1)
    ra = (MA == "" ? "-" : sprintf("%.1f", MA / 1024)); rb = (MB == "" ? "-" : sprintf("%.1f", MB / 1024))
    rr = (ok ? sprintf("%.2f", RAT) : "-"); rv = VERDICT
    if (ok) { lsum[1] += log(RAT); cnt[1]++; if (rv != "within noise") out[1]++ }
    printf fmt, w, ma, mb, mr, mv, ra, rb, rr, rv
  }
  printf fmt, "geomean", "", "", (cnt[0] ? sprintf("%.2f", exp(lsum[0] / cnt[0])) : "-"), "", \
    "", "", (cnt[1] ? sprintf("%.2f", exp(lsum[1] / cnt[1])) : "-"), ""
  printf "# outside the noise: %s %d of %d, peak RSS %d of %d\n", vhead, out[0], cnt[0], out[1], cnt[1]
  if (only_a != "") print "# only in A (not compared): " only_a
  if (only_b != "") print "# only in B (not compared): " only_b
}
