# larson-report.awk -- the table, gnuplot's data and gnuplot's script of a
# larson.sh result file. Input: the file flattened by hk_json_flat
# (scripts/lib.sh). Output: the table on stdout; with -v dat=FILE -v gp=FILE
# also the chart's data and script (gp is left empty when the reference was
# not measured: no ratios, no chart). Other variables: png (the chart's file
# name, as gnuplot will be run from its folder), term (gnuplot's terminal).
# range(), fmt_val() and field() come from larson-common.awk.
#
# A workload timed in seconds (the real profile: "metric": "seconds") is
# given as a speed, the reference's seconds / X's seconds, so that x > 1 is
# faster in every row: its range over the runs is min(R)/max(X) to
# max(R)/min(X), and the noise rule is the same.
#
# The noise rule (scripts/larson.sh --help, docs/BENCHMARKS.md): allocator X
# against the reference R on a workload, from the runs' minimum and maximum,
#   low = min(X) / max(R),  high = max(X) / min(R);
# X's ratio is "within noise" when low <= 1 <= high: by the runs alone, X
# could as well be as fast (as large) as R. Throughput and peak RSS alike.
# The chart's error bar is that range; the table marks the ratio with "~".
# The reference's own range, min(R)/max(R) to max(R)/min(R), is drawn but
# never flagged.

BEGIN { FS = "\t" }
{
  n = split($1, p, "/")
  if (p[1] == "results" && n >= 3) {
    r = p[2] + 0
    if (r + 1 > nres) nres = r + 1
    if (n == 4) S[r, p[3]] = S[r, p[3]] " " $2
    else V[r, p[3]] = $2
  } else if (p[1] == "skipped" && n == 3) {
    K[p[2] + 0, p[3]] = $2
    if (p[2] + 1 > nskip) nskip = p[2] + 1
  } else if (n == 1) {
    T[$1] = $2
  }
}


# ratio(W, A, M): allocator A to the reference on workload W for metric M
# (0 throughput or speed, 1 peak RSS); sets RAT, RLO, RHI, NOISE; 0 when not
# computable
function ratio(w, a, m,    rx, rr, mf, sf, mx, mr, xlo, xhi, met) {
  if (!((w, a) in row) || !((w, ref) in row)) return 0
  rx = row[w, a]; rr = row[w, ref]
  met = metric_of(V[rx, "metric"])
  mf = (m == 0 ? field("median", met) : "peak_rss_kib")
  sf = (m == 0 ? field("samples", met) : "samples_rss_kib")
  mx = V[rx, mf]; mr = V[rr, mf]
  if (mx == "" || mr == "" || mr + 0 <= 0 || mx + 0 <= 0) return 0
  range(S[rx, sf], mx); xlo = LO; xhi = HI
  range(S[rr, sf], mr)
  if (HI <= 0 || LO <= 0 || xlo <= 0) return 0
  if (m == 0 && met == "seconds") { RAT = mr / mx; RLO = LO / xhi; RHI = HI / xlo }
  else { RAT = mx / mr; RLO = xlo / HI; RHI = xhi / LO }
  NOISE = (a != ref && RLO <= 1 && RHI >= 1)
  return 1
}


# gnuplot strings: single-quoted ones double their quotes
function gq(s) { gsub(/'/, "''", s); return "'" s "'" }

END {
  ref = T["reference"]
  nw = na = 0
  for (r = 0; r < nres; r++) {
    w = V[r, "workload"]; a = V[r, "allocator"]
    if (!(w in wi)) { wi[w] = nw; wl[nw++] = w }
    if (!(a in ai)) { ai[a] = na; al[na++] = a }
    row[w, a] = r
    if (!(w in wmet)) { wmet[w] = metric_of(V[r, "metric"]); nmet[wmet[w]]++ }
  }
  # the value column: Mops/s, seconds, or both (then seconds say "s")
  vhead = (nmet["seconds"] == 0 ? "Mops/s" : nmet["mops"] == 0 ? "seconds" : "Mops|s")
  ww = 18; aw = 9
  for (i = 0; i < nw; i++) if (length(wl[i]) >= ww) ww = length(wl[i]) + 1
  for (j = 0; j < na; j++) if (length(al[j]) >= aw) aw = length(al[j]) + 1
  tfmt = "%-" ww "s %-" aw "s %10s %6s%-2s %6s %9s %6s%-2s %s\n"

  print "# " T["command"]
  print "# " T["date"] ", hakmem " T["hakmem_revision"] ", " T["seconds"] "s"
  print "# " T["machine"]
  print "# medians of " T["reps"] " runs after a warm-up, allocators alternating; x = ratio to " ref
  if (nmet["seconds"] == 0)
    print "# (Mops x > 1: faster than " ref "; RSS x < 1: smaller); spread = (max-min)/median of the runs"
  else
    print "# (" (nmet["mops"] ? "Mops x > 1, " : "") "seconds: wall time, lower is better, x = speed = " ref "'s seconds / these, > 1: faster than " ref \
      "; RSS x < 1: smaller); spread = (max-min)/median of the runs"
  print "# ~ after a ratio: within noise (its range over the runs, min/max(" ref ") to max/min(" ref "), contains 1)"
  printf tfmt, "workload", "allocator", vhead, "x", "", "spread", "RSS_MiB", "x", "", ""
  for (i = 0; i < nw; i++) {
    w = wl[i]
    for (j = 0; j < na; j++) {
      a = al[j]
      if (!((w, a) in row)) continue
      r = row[w, a]
      note = (V[r, "failed_runs"] + 0 > 0 ? "(" V[r, "failed_runs"] " failed runs)" : "")
      met = wmet[w]
      m = V[r, field("median", met)]
      if (m == "") { printf tfmt, w, a, "FAIL", "-", "", "-", "-", "-", "", note; continue }
      mx = "-"; mmark = ""; rx = "-"; rmark = ""
      if (ratio(w, a, 0)) { mx = sprintf("%.2f", RAT); mmark = (NOISE ? " ~" : "") }
      if (ratio(w, a, 1)) { rx = sprintf("%.2f", RAT); rmark = (NOISE ? " ~" : "") }
      range(S[r, field("samples", met)], m)
      spread = sprintf("%.0f%%", m > 0 ? (HI - LO) / m * 100 : 0)
      val = fmt_val(met, m) (vhead == "Mops|s" && met == "seconds" ? "s" : "")
      printf tfmt, w, a, val, mx, mmark, spread, sprintf("%.1f", V[r, "peak_rss_kib"] / 1024), rx, rmark, note
    }
  }
  for (k = 0; k < nskip; k++)
    if (K[k, "workload"] != "") print "# not run: " K[k, "workload"] " (" K[k, "reason"] ")"
    else print "# not measured: " K[k, "allocator"] " (" K[k, "reason"] ")"

  if (dat == "" || gp == "") exit 0
  printf "" >dat; printf "" >gp
  if (!((ref) in ai)) exit 0
  # the chart: bars at x = workload + offset of the allocator in its cluster
  bw = 0.8 / na
  for (m = 0; m <= 1; m++) {
    top[m] = 1
    printf "# %s relative to %s: x, allocator (0 = %s ...), ratio of the medians, low, high, within noise, workload\n", \
      (m == 0 ? "throughput or speed" : "peak RSS"), ref, al[0] >dat
    for (i = 0; i < nw; i++)
      for (j = 0; j < na; j++) {
        if (!ratio(wl[i], al[j], m)) continue
        printf "%.4f %d %.4f %.4f %.4f %d %s\n", i + (j - (na - 1) / 2) * bw, j, RAT, RLO, RHI, NOISE, wl[i] >dat
        if (RAT > top[m]) top[m] = RAT
        bar[m, i, j] = RHI
      }
    printf "\n\n" >dat   # gnuplot: index 0 = throughput, index 1 = peak RSS
    # y axis up to the highest error bar, but at most 1.5 x the highest bar
    # (a longer error bar is cut at the top)
    ymax[m] = top[m] * 1.1
    for (k in bar) {
      split(k, kk, SUBSEP)
      if (kk[1] == m && bar[k] > ymax[m]) ymax[m] = (bar[k] < top[m] * 1.5 ? bar[k] : top[m] * 1.5)
    }
  }
  close(dat)
  datname = dat; sub(/.*\//, "", datname)
  width = 200 + nw * (na * 18 + 30); if (width < 900) width = 900
  title = "scripts/larson.sh " T["profile"] " -- " T["date"] ", hakmem " T["hakmem_revision"] "\\n" T["machine"]
  gsub(/"/, "'", title)
  print "set terminal " term " size " width ",900 noenhanced" >gp
  print "set output " gq(png) >gp
  print "set style fill solid 0.85 border -1" >gp
  print "set boxwidth " bw " absolute" >gp
  print "set grid ytics" >gp
  print "set key outside right top vertical Left reverse" >gp
  xt = ""
  for (i = 0; i < nw; i++) xt = xt (i ? ", " : "") gq(wl[i]) " " i
  print "set xtics (" xt ") rotate by -30 nomirror" >gp
  print "set xrange [-0.6:" nw - 0.4 "]" >gp
  print "set lmargin 10" >gp
  print "set rmargin 26" >gp
  print "set multiplot layout 2,1 title \"" title "\" font ',11'" >gp
  print "set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 1.5 lc rgb 'black' front" >gp
  for (m = 0; m <= 1; m++) {
    if (m == 0) {
      if (nmet["seconds"] == 0)
        print "set title " gq("throughput relative to " ref " (median Mops/s; higher is better)") >gp
      else if (nmet["mops"] == 0)
        print "set title " gq("speed relative to " ref " (" ref "'s median seconds / median seconds; higher is better)") >gp
      else
        print "set title " gq("throughput (Mops/s), or speed of a timed program (" ref "'s seconds / seconds), relative to " ref "; higher is better") >gp
    } else {
      print "set title " gq("peak RSS relative to " ref " (median; lower is better)") >gp
      print "unset key" >gp
    }
    print "set ylabel " gq("x " ref) >gp
    printf "set yrange [0:%.3f]\n", ymax[m] >gp
    pl = "plot "
    for (j = 0; j < na; j++) {
      pl = pl sprintf("%s index %d using 1:($2 == %d && $6 == 0 ? $3 : 1/0) with boxes fs solid 0.85 border -1 lc %d title %s, \\\n  ", \
        (j ? "''" : gq(datname)), m, j, j + 1, gq(al[j]))
      pl = pl sprintf("'' index %d using 1:($2 == %d && $6 == 1 ? $3 : 1/0) with boxes fs pattern 4 border -1 lc %d notitle, \\\n  ", m, j, j + 1)
    }
    pl = pl sprintf("'' index %d using 1:3:4:5 with yerrorbars lc rgb 'black' pt 0 title 'range over the runs', \\\n  ", m)
    pl = pl "keyentry with boxes fs pattern 4 border -1 lc rgb 'gray30' title " gq("hatched: within noise")
    print pl >gp
  }
  print "unset multiplot" >gp
  close(gp)
}
