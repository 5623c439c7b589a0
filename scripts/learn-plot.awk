# learn-plot.awk -- gnuplot's data and script for a learning log (the CSV
# that HAKMEM_LEARN_LOG=FILE writes, one row per epoch). Run by
# scripts/learn-plot.sh; plain awk (mawk or gawk).
#
# Input: the CSV. Its first line names the columns, and only those names are
# used: columns may come in any order, unknown ones are ignored, and a panel
# (or a line of one) whose columns are absent or have no value is left out.
# Fields may be double-quoted ("" is a quote inside one).
# Variables: dat, gp (the files to write), png (the chart, as gnuplot is to
# write it), name (the log's name, for the title), me (for messages).
# Output: the chart's size in pixels, "WIDTH,HEIGHT", on stdout (the caller
# sets the terminal: it knows which one this gnuplot has). A log with no
# t_ms column, with no row that has a t_ms, or with nothing to draw is an
# error: one line on stderr, exit status 2.
#
# The panels, top to bottom, on one x axis (seconds, t_ms / 1000):
#   cost                        the epoch's objective, lower is better
#   resident_mb, committed_mb
#   p_*                         each parameter / its first non-zero value, on
#                               a log scale, so that one panel holds
#                               milliseconds and megabytes alike; a value of
#                               0 sits on a "0" tick below the others
#   strategy_id (or strategy), arm   the choices, as steps
#   elo_*                       the strategies' ratings
# A change of phase (a benchmark's label) or of mode is a dashed vertical
# line through every panel, named in the top one.
# Parameters and choices are steps: a row describes the epoch that ENDED at
# its t_ms (learner.c logs the arm, strategy and sizes that ran it), so its
# value holds from the previous row's time to its own (gnuplot's fsteps).

BEGIN { nrow = nsid = 0; OFMT = CONVFMT = "%.10g" }   # seconds to the millisecond, even after days

# split_csv(LINE, F): the fields of one CSV line into F[1..n]; returns n
function split_csv(s, f,    n, i, c, q, v) {
  n = 0; v = ""; q = 0
  for (i = 1; i <= length(s); i++) {
    c = substr(s, i, 1)
    if (q) {
      if (c == "\"") {
        if (substr(s, i + 1, 1) == "\"") { v = v c; i++ } else q = 0
      } else v = v c
    } else if (c == "\"") q = 1
    else if (c == ",") { f[++n] = v; v = "" }
    else v = v c
  }
  f[++n] = v
  return n
}

function trim(s) { gsub(/^[ \t]+|[ \t]+$/, "", s); return s }
function isnum(s) { return s ~ /^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/ }
# gnuplot strings: single-quoted ones double their quotes
function gq(s) { gsub(/'/, "''", s); return "'" s "'" }
function fail(msg) { print me ": " msg >"/dev/stderr"; failed = 1; exit 2 }

# val(ROW, NAME): the number in column NAME of row ROW, "" when the column is
# absent or the field is not a number
function val(r, c) { return ((c in col) && isnum(cell[r, col[c]])) ? cell[r, col[c]] + 0 : "" }

# logtics(LO, HI): tics for a log axis from LO to HI, at 1, 2 and 5 times
# the powers of ten -- gnuplot's own, one per decade, leave a panel that
# spans a factor of 4 with the single tic 1 -- or at the decades alone when
# the axis spans more than four of them
function logtics(lo, hi,    d, m, s, t, i) {
  split("1 2 5", m, " ")
  d = 1
  while (d > lo) d /= 10
  while (d * 10 <= lo) d *= 10
  s = ""
  for (; d <= hi; d *= 10)
    for (i = 1; i <= 3; i++) {
      t = d * m[i]
      if ((i == 1 || hi / lo <= 1e4) && t >= lo && t <= hi) s = s (s == "" ? "" : ", ") t
    }
  return s
}

# field(V, WHAT): V as a field of the data ("?" when missing), noting in
# any[WHAT] that WHAT has a value; the strategies' and arms' lowest and
# highest in clo, chi (the choice panel's range)
function field(v, what) {
  if (v == "") return "?"
  any[what] = 1
  if (what == "strategy" || what == "arm") {
    if (!nchoice++ || v < clo) clo = v
    if (nchoice == 1 || v > chi) chi = v
  }
  return v
}

# series(TITLE, COLUMN, STYLE): one more line of the panel being written
function series(t, k, style) {
  plot = plot (plot == "" ? "plot " : ", \\\n     ") gq(dat) " using 1:" k " " style " title " gq(t)
}

# panel(YLABEL): write the panel collected in plot (nothing when it has no
# line), with the phase and mode marks; only the bottom one labels x
function panel(ylabel,    i) {
  if (plot == "") return
  shown++
  print "set ylabel " gq(ylabel) >gp
  for (i = 1; i <= nmark; i++) {
    print "set arrow " i " from " mx[i] ", graph 0 to " mx[i] ", graph 1 nohead dt 2 lc rgb 'gray50' back" >gp
    if (shown == 1)
      print "set label " i " " gq(mt[i]) " at " mx[i] ", graph " (i % 2 ? 0.93 : 0.83) \
            " left offset 0.4,0 font ',8' tc rgb 'gray30' front" >gp
  }
  if (shown == npanels) {
    print "set format x '%g'" >gp
    print "set xlabel 'seconds since the learner started (t_ms / 1000)'" >gp
  }
  print plot >gp
  print "unset label; unset logscale y; set yrange [*:*]; set ytics autofreq" >gp
  plot = ""
}

NR == 1 {
  sub(/\r$/, "")
  nh = split_csv($0, h)
  for (i = 1; i <= nh; i++) {
    c = trim(h[i])
    if (c == "" || (c in col)) continue   # a repeated name: the first column counts
    col[c] = i
    if (c ~ /^p_./) pcol[++np] = c
    else if (c ~ /^elo_./) ecol[++ne] = c
  }
  if (!("t_ms" in col)) fail(name ": no t_ms column (the header is: " $0 ")")
  next
}

{
  sub(/\r$/, "")
  if ($0 ~ /^[ \t]*$/) next
  n = split_csv($0, f)
  if (!isnum(trim(f[col["t_ms"]]))) next   # a row without its time cannot be placed
  nrow++
  for (i = 1; i <= n; i++) cell[nrow, i] = trim(f[i])
}

END {
  if (failed) exit 2
  if (nrow == 0) fail(name ": no epoch (no row with a t_ms under the header)")

  # x: seconds; an x range of one point is widened (gnuplot refuses [a:a])
  for (r = 1; r <= nrow; r++) {
    x[r] = val(r, "t_ms") / 1000
    if (r == 1 || x[r] < xlo) xlo = x[r]
    if (r == 1 || x[r] > xhi) xhi = x[r]
  }
  if (xhi == xlo) xhi = xlo + 1

  # the strategy: strategy_id, named by the strategy column where there is
  # one; with names alone, numbered in order of first appearance
  for (r = 1; r <= nrow; r++) {
    s = ("strategy" in col) ? cell[r, col["strategy"]] : ""
    id = val(r, "strategy_id")
    if (id == "" && !("strategy_id" in col) && s != "") {
      if (!(s in sid)) { sid[s] = nsid; sname[nsid] = s; nsid++ }
      id = sid[s]
    } else if (id != "" && s != "" && !((id "") in idname)) {
      idname[id ""] = s; ids[++nids] = id
    }
    strat[r] = id
  }
  stitle = ("strategy_id" in col) ? "strategy_id" : "strategy"
  nleg = 0
  if ("strategy_id" in col) {
    for (i = 1; i <= nids; i++)   # the ids in ascending order (insertion sort)
      for (j = i; j > 1 && ids[j] < ids[j - 1]; j--) { t = ids[j]; ids[j] = ids[j - 1]; ids[j - 1] = t }
    for (i = 1; i <= nids; i++) leg[++nleg] = ids[i] " " idname[ids[i] ""]
  } else
    for (i = 0; i < nsid; i++) leg[++nleg] = i " " sname[i]

  # parameters: ratio to the first non-zero value; 0 goes on a floor a
  # decade below the smallest ratio, negative values are left out
  plo = 1; phi = 1; zero = 0
  for (k = 1; k <= np; k++) {
    c = pcol[k]; pref[k] = ""; pany[k] = 0
    for (r = 1; r <= nrow; r++) {
      v = val(r, c)
      if (v == "") continue
      pany[k] = 1
      if (v != 0 && pref[k] == "") { pref[k] = v; praw[k] = cell[r, col[c]] }
    }
    for (r = 1; r <= nrow; r++) {
      v = val(r, c); pv[k, r] = "?"
      if (v == "" || v < 0) continue
      if (v == 0) { pv[k, r] = "zero"; zero = 1; continue }
      pv[k, r] = v / pref[k]
      if (pv[k, r] < plo) plo = pv[k, r]
      if (pv[k, r] > phi) phi = pv[k, r]
    }
  }
  if (zero) {
    pfloor = 1
    while (pfloor > plo / 10) pfloor /= 10
    plo = pfloor
  }

  # the data: one row per epoch, "?" where a value is missing
  #   1 seconds  2 cost  3 resident_mb  4 committed_mb  5 strategy  6 arm
  #   7.. each p_* ratio, then each elo_*
  split("cost resident_mb committed_mb", nm, " ")
  for (r = 1; r <= nrow; r++) {
    line = x[r]
    for (i = 1; i <= 3; i++) line = line " " field(val(r, nm[i]), nm[i])
    line = line " " field(strat[r], "strategy") " " field(val(r, "arm"), "arm")
    for (k = 1; k <= np; k++) line = line " " (pv[k, r] == "zero" ? pfloor : pv[k, r])
    for (k = 1; k <= ne; k++) line = line " " field(val(r, ecol[k]), ecol[k])
    print line >dat
  }
  close(dat)

  # the marks: where the phase or the mode changes (and where each starts);
  # more than 40 would hide the data, and are left out
  for (r = 1; r <= nrow; r++) {
    t = ""
    ph = ("phase" in col) ? cell[r, col["phase"]] : ""
    md = ("mode" in col) ? cell[r, col["mode"]] : ""
    if (ph != "" && ph != lastph) { t = ph; lastph = ph }
    if (md != "" && md != lastmd) { t = t (t == "" ? "" : ", ") "mode " md; lastmd = md }
    if (t != "") { mx[++nmark] = x[r]; mt[nmark] = t }
  }
  if (nmark > 40) nmark = 0

  # which panels have something to draw
  hasp = hase = 0
  for (k = 1; k <= np; k++) if (pany[k]) hasp = 1
  for (k = 1; k <= ne; k++) if (ecol[k] in any) hase = 1
  npanels = ("cost" in any) + (("resident_mb" in any) || ("committed_mb" in any)) + hasp + \
            (("strategy" in any) || ("arm" in any)) + hase
  if (npanels == 0) fail(name ": nothing to draw (no cost, resident_mb, committed_mb, p_*, strategy_id, arm or elo_* values)")

  dots = (nrow <= 200 ? "linespoints pt 7 ps 0.4" : "lines")
  title = "learning log " name ": " nrow " epoch" (nrow == 1 ? "" : "s") ", " sprintf("%.1f", xhi - xlo) " s"
  print "set output " gq(png) >gp
  print "set datafile missing '?'" >gp
  print "set key at screen 0.76, graph 1 left top vertical Left reverse noautotitle" >gp
  print "set grid xtics ytics lc rgb 'gray85' dt 1" >gp
  print "set xrange [" xlo ":" xhi "]" >gp
  print "set offsets 0, 0, graph 0.05, graph 0.05   # a flat line is not drawn on the frame" >gp
  print "set format x ''" >gp
  print "set multiplot layout " npanels ",1 margins 0.08,0.74,0.07,0.94 spacing 0,0.025 title " gq(title) " font ',11'" >gp

  plot = ""
  if ("cost" in any) series("cost (lower is better)", 2, "with " dots " lw 1.5 lc rgb '#c0392b'")
  panel("cost")

  if ("resident_mb" in any) series("resident_mb", 3, "with lines lw 1.5 lc rgb '#2471a3'")
  if ("committed_mb" in any) series("committed_mb", 4, "with lines lw 1.5 dt 2 lc rgb '#7d3c98'")
  panel("MB")

  for (k = 1; k <= np; k++) {
    if (!pany[k]) continue
    t = substr(pcol[k], 3) (pref[k] == "" ? " (always 0)" : " (1 = " praw[k] ")")
    series(t, 6 + k, "with fsteps lw 1.5 lc " k)
  }
  if (plot != "") {
    print "set logscale y" >gp
    printf "set yrange [%g:%g]\n", plo / 1.5, phi * 1.5 >gp
    print "set ytics (" logtics(plo / 1.5, phi * 1.5) ")" >gp
    if (zero) print "set ytics add ('0' " pfloor ")" >gp
  }
  panel("x first value (log)")

  if (("strategy" in any) || ("arm" in any)) {
    # half a step of room, so that the lowest and highest choices are not
    # drawn on the frame
    print "set ytics 1" >gp
    printf "set yrange [%g:%g]\n", clo - 0.5, chi + 0.5 >gp
  }
  # the strategy wide and light under the arm, so that both show where they agree
  if ("strategy" in any) {
    series(stitle, 5, "with fsteps lw 5 lc rgb '#a9cce3'")
    # the names, one per line of the key under it: one line for all would
    # not fit beside the panel once there are a few strategies
    for (i = 1; i <= nleg; i++) plot = plot ", \\\n     keyentry with lines lc bgnd title " gq("  " leg[i])
  }
  if ("arm" in any) series("arm (UCB1)", 6, "with fsteps lw 1.5 lc rgb '#1a5276'")
  panel("choice")

  for (k = 1; k <= ne; k++)
    if (ecol[k] in any) series(substr(ecol[k], 5), 6 + np + k, "with lines lw 1.5 lc " k)
  panel("ELO rating")

  print "unset multiplot" >gp
  close(gp)
  printf "1100,%d\n", 110 + 190 * npanels
}
