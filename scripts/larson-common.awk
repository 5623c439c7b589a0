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
