set terminal pngcairo font "sans,10" size 1160,900 noenhanced
set output 'quick.png'
set style fill solid 0.85 border -1
set boxwidth 0.16 absolute
set grid ytics
set key outside right top vertical Left reverse
set xtics ('tiny_hot' 0, 'random_mixed' 1, 'mid_mt:T2' 2, 'cross_thread' 3, 'larson:T2' 4, 'realloc_growth' 5, 'large' 6, 'phased' 7) rotate by -30 nomirror
set xrange [-0.6:7.6]
set lmargin 10
set rmargin 26
set multiplot layout 2,1 title "scripts/larson.sh quick -- 2026-11-27T08:25Z, hakmem 8eabbfe\nAMD EPYC, 2 cpus, 24 GiB RAM, Linux 6.18.44-fc-v669, Debian GNU/Linux 12 (bookworm)" font ',11'
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 1.5 lc rgb 'black' front
set title 'throughput relative to mimalloc (median Mops/s; higher is better)'
set ylabel 'x mimalloc'
set yrange [0:10.801]
plot 'quick.dat' index 0 using 1:($2 == 0 && $6 == 0 ? $3 : 1/0) with boxes fs solid 0.85 border -1 lc 1 title 'hakmem', \
  '' index 0 using 1:($2 == 0 && $6 == 1 ? $3 : 1/0) with boxes fs pattern 4 border -1 lc 1 notitle, \
  '' index 0 using 1:($2 == 1 && $6 == 0 ? $3 : 1/0) with boxes fs solid 0.85 border -1 lc 2 title 'mimalloc', \
  '' index 0 using 1:($2 == 1 && $6 == 1 ? $3 : 1/0) with boxes fs pattern 4 border -1 lc 2 notitle, \
  '' index 0 using 1:($2 == 2 && $6 == 0 ? $3 : 1/0) with boxes fs solid 0.85 border -1 lc 3 title 'jemalloc', \
  '' index 0 using 1:($2 == 2 && $6 == 1 ? $3 : 1/0) with boxes fs pattern 4 border -1 lc 3 notitle, \
  '' index 0 using 1:($2 == 3 && $6 == 0 ? $3 : 1/0) with boxes fs solid 0.85 border -1 lc 4 title 'tcmalloc', \
  '' index 0 using 1:($2 == 3 && $6 == 1 ? $3 : 1/0) with boxes fs pattern 4 border -1 lc 4 notitle, \
  '' index 0 using 1:($2 == 4 && $6 == 0 ? $3 : 1/0) with boxes fs solid 0.85 border -1 lc 5 title 'glibc', \
  '' index 0 using 1:($2 == 4 && $6 == 1 ? $3 : 1/0) with boxes fs pattern 4 border -1 lc 5 notitle, \
  '' index 0 using 1:3:4:5 with yerrorbars lc rgb 'black' pt 0 title 'range over the runs', \
  keyentry with boxes fs pattern 4 border -1 lc rgb 'gray30' title 'hatched: within noise'
set title 'peak RSS relative to mimalloc (median; lower is better)'
unset key
set ylabel 'x mimalloc'
set yrange [0:4.433]
plot 'quick.dat' index 1 using 1:($2 == 0 && $6 == 0 ? $3 : 1/0) with boxes fs solid 0.85 border -1 lc 1 title 'hakmem', \
  '' index 1 using 1:($2 == 0 && $6 == 1 ? $3 : 1/0) with boxes fs pattern 4 border -1 lc 1 notitle, \
  '' index 1 using 1:($2 == 1 && $6 == 0 ? $3 : 1/0) with boxes fs solid 0.85 border -1 lc 2 title 'mimalloc', \
  '' index 1 using 1:($2 == 1 && $6 == 1 ? $3 : 1/0) with boxes fs pattern 4 border -1 lc 2 notitle, \
  '' index 1 using 1:($2 == 2 && $6 == 0 ? $3 : 1/0) with boxes fs solid 0.85 border -1 lc 3 title 'jemalloc', \
  '' index 1 using 1:($2 == 2 && $6 == 1 ? $3 : 1/0) with boxes fs pattern 4 border -1 lc 3 notitle, \
  '' index 1 using 1:($2 == 3 && $6 == 0 ? $3 : 1/0) with boxes fs solid 0.85 border -1 lc 4 title 'tcmalloc', \
  '' index 1 using 1:($2 == 3 && $6 == 1 ? $3 : 1/0) with boxes fs pattern 4 border -1 lc 4 notitle, \
  '' index 1 using 1:($2 == 4 && $6 == 0 ? $3 : 1/0) with boxes fs solid 0.85 border -1 lc 5 title 'glibc', \
  '' index 1 using 1:($2 == 4 && $6 == 1 ? $3 : 1/0) with boxes fs pattern 4 border -1 lc 5 notitle, \
  '' index 1 using 1:3:4:5 with yerrorbars lc rgb 'black' pt 0 title 'range over the runs', \
  keyentry with boxes fs pattern 4 border -1 lc rgb 'gray30' title 'hatched: within noise'
unset multiplot
