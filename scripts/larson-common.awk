# larson-common.awk -- functions shared by larson-report.awk and
# larson-compare.awk (loaded with -f before either).

# range(SAMPLES, MEDIAN): LO and HI of the space-separated runs (the median
# when there are none)
function range(s, med,    a, k, m) {
  m = split(s, a, " ")
  LO = HI = med + 0
  for (k = 1; k <= m; k++) {
    if (k == 1 || a[k] + 0 < LO) LO = a[k] + 0
    if (k == 1 || a[k] + 0 > HI) HI = a[k] + 0
  }
}

# fmt_mops(M): Mops/s with about four significant digits
function fmt_mops(m) {
  if (m >= 100) return sprintf("%.1f", m)
  if (m >= 1) return sprintf("%.2f", m)
  if (m >= 0.01) return sprintf("%.4f", m)
  return sprintf("%.6f", m)
}

# A result's metric (its "metric" field; files written before it existed
# have none and are throughput): "mops" (Mops/s, higher is better) or
# "seconds" (wall time of a real program, lower is better). field(WHAT, MET)
# is the name of its median or samples field: median_mops, samples_seconds...
function metric_of(met) { return (met == "" ? "mops" : met) }
function field(what, met) { return what "_" metric_of(met) }

# fmt_val(MET, V): a median or sample of metric MET, as the tables print it
function fmt_val(met, v) { return (metric_of(met) == "seconds" ? sprintf("%.3f", v) : fmt_mops(v)) }
