# summarize.awk: medians of Go benchmark results.
#
#   awk -f bench/summarize.awk run1.txt run2.txt ...
#
# Prints one Markdown table row per benchmark with the median of every
# metric (ns/op, B/op, allocs/op, custom ones) over all its results, and the
# number of results. With -v ratios=1 it prints instead, for every
# benchmark with sub-benchmarks handler=bare and handler=X, the ratio
# X/bare of ns/op in each file (one file = one run, so the two were measured
# in the same process, one after the other), and the median of those ratios.
# -v key=K -v base=B pair K=B with the other K=X instead (bench/tuning.sh
# uses build=before and build=after).

BEGIN {
  if (key == "") key = "handler"
  if (base == "") base = "bare"
  tag = "/" key "="
}

function median(list,    n, a, i, j, t) {
  n = split(list, a, " ")
  for (i = 2; i <= n; i++) {            # insertion sort: n is small
    t = a[i] + 0
    for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]
    a[j + 1] = t
  }
  if (n % 2) return a[(n + 1) / 2]
  return (a[n / 2] + a[n / 2 + 1]) / 2
}

function fmt(v) {
  if (v == int(v)) return sprintf("%d", v)
  if (v >= 100) return sprintf("%.0f", v)
  if (v >= 10) return sprintf("%.1f", v)
  if (v >= 1) return sprintf("%.2f", v)
  return sprintf("%.4g", v)
}

/^Benchmark/ {
  name = $1
  sub(/-[0-9]+$/, "", name)              # drop the GOMAXPROCS suffix
  if (!(name in seen)) { seen[name] = 1; order[++nnames] = name }
  count[name]++
  for (i = 3; i < NF; i += 2) {
    unit = $(i + 1)
    mk = name SUBSEP unit
    if (!(mk in vals)) { units[name] = units[name] " " unit }
    vals[mk] = vals[mk] " " $i
  }
  if (ratios && (p = index(name, tag)) > 0) {
    b = substr(name, 1, p - 1)
    variant = substr(name, p + length(tag)); sub(/\/.*/, "", variant)
    rest = substr(name, p + length(tag) + length(variant))
    b = b rest
    ns[FILENAME, b, variant] = $3
    if (!(b in hasbase)) { hasbase[b] = 1; border[++nb] = b }
    if (!((b, variant) in hasvar)) { hasvar[b, variant] = 1; variants[b] = variants[b] " " variant }
    if (!(FILENAME in hasfile)) { hasfile[FILENAME] = 1; files[++nfiles] = FILENAME }
  }
}

END {
  if (ratios) {
    print "| benchmark | ratio of ns/op | per run | median |"
    print "|---|---|---|---|"
    for (k = 1; k <= nb; k++) {
      b = border[k]
      nv = split(variants[b], vs, " ")
      for (v = 1; v <= nv; v++) {
        if (vs[v] == base) continue
        list = ""
        for (f = 1; f <= nfiles; f++) {
          if (((files[f], b, base) in ns) && ((files[f], b, vs[v]) in ns))
            list = list " " sprintf("%.3f", ns[files[f], b, vs[v]] / ns[files[f], b, base])
        }
        if (list == "") continue
        printf "| %s | %s / %s |%s | **%.3f** |\n", b, vs[v], base, list, median(list)
      }
    }
    exit
  }
  printf "| benchmark | runs | ns/op | B/op | allocs/op | other (median) |\n"
  printf "|---|---|---|---|---|---|\n"
  for (k = 1; k <= nnames; k++) {
    name = order[k]
    nsop = bop = aop = "-"
    other = ""
    nu = split(units[name], us, " ")
    for (u = 1; u <= nu; u++) {
      m = fmt(median(vals[name, us[u]]))
      if (us[u] == "ns/op") nsop = m
      else if (us[u] == "B/op") bop = m
      else if (us[u] == "allocs/op") aop = m
      else other = other (other == "" ? "" : ", ") m " " us[u]
    }
    printf "| %s | %d | %s | %s | %s | %s |\n", name, count[name], nsop, bop, aop, other
  }
}
