set terminal pngcairo font "sans,10" size 3668,900 noenhanced
set output 'full-xeon.png'
set style fill solid 0.85 border -1
set boxwidth 0.2 absolute
set grid ytics
set key outside right top vertical Left reverse
set xtics ('tiny_hot' 0, 'mid_hot' 1, 'random_mixed' 2, 'random_mid' 3, 'mid_mt:T1' 4, 'mid_mt:T2' 5, 'mid_mt:T4' 6, 'mid_big_mt:T1' 7, 'mid_big_mt:T2' 8, 'mid_big_mt:T4' 9, 'cross_thread' 10, 'cross_thread_mid' 11, 'larson:T1' 12, 'larson:T2' 13, 'larson:T4' 14, 'larson_mid:T1' 15, 'larson_mid:T2' 16, 'larson_mid:T4' 17, 'realloc_growth' 18, 'large' 19, 'large_mt:T1' 20, 'large_mt:T2' 21, 'large_mt:T4' 22, 'phased' 23, 'many_to_one:T1' 24, 'many_to_one:T2' 25, 'many_to_one:T4' 26, 'alloc_test:T1' 27, 'alloc_test:T2' 28, 'alloc_test:T4' 29, 'cache_scratch:T1' 30, 'cache_scratch:T2' 31, 'cache_scratch:T4' 32, 'big_heap' 33) rotate by -30 nomirror
set xrange [-0.6:33.6]
set lmargin 10
set rmargin 26
set multiplot layout 2,1 title "scripts/larson.sh full -- 2026-12-03T02:46Z, hakmem 0072f86\nIntel(R) Xeon(R) Processor, 2 cpus, 24 GiB RAM, Linux 6.18.44-fc-v857, Debian GNU/Linux 12 (bookworm)" font ',11'
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 1.5 lc rgb 'black' front
set title 'throughput relative to mimalloc (median Mops/s; higher is better)'
set ylabel 'x mimalloc'
set yrange [0:3.526]
plot 'full-xeon.dat' index 0 using 1:($2 == 0 && $6 == 0 ? $3 : 1/0) with boxes fs solid 0.85 border -1 lc 1 title '88b741c', \
  '' index 0 using 1:($2 == 0 && $6 == 1 ? $3 : 1/0) with boxes fs pattern 4 border -1 lc 1 notitle, \
  '' index 0 using 1:($2 == 1 && $6 == 0 ? $3 : 1/0) with boxes fs solid 0.85 border -1 lc 2 title 'hakmem', \
  '' index 0 using 1:($2 == 1 && $6 == 1 ? $3 : 1/0) with boxes fs pattern 4 border -1 lc 2 notitle, \
  '' index 0 using 1:($2 == 2 && $6 == 0 ? $3 : 1/0) with boxes fs solid 0.85 border -1 lc 3 title 'mimalloc', \
  '' index 0 using 1:($2 == 2 && $6 == 1 ? $3 : 1/0) with boxes fs pattern 4 border -1 lc 3 notitle, \
  '' index 0 using 1:($2 == 3 && $6 == 0 ? $3 : 1/0) with boxes fs solid 0.85 border -1 lc 4 title 'tcmalloc', \
  '' index 0 using 1:($2 == 3 && $6 == 1 ? $3 : 1/0) with boxes fs pattern 4 border -1 lc 4 notitle, \
  '' index 0 using 1:3:4:5 with yerrorbars lc rgb 'black' pt 0 title 'range over the runs', \
  keyentry with boxes fs pattern 4 border -1 lc rgb 'gray30' title 'hatched: within noise'
set title 'peak RSS relative to mimalloc (median; lower is better)'
unset key
set ylabel 'x mimalloc'
set yrange [0:8.762]
plot 'full-xeon.dat' index 1 using 1:($2 == 0 && $6 == 0 ? $3 : 1/0) with boxes fs solid 0.85 border -1 lc 1 title '88b741c', \
  '' index 1 using 1:($2 == 0 && $6 == 1 ? $3 : 1/0) with boxes fs pattern 4 border -1 lc 1 notitle, \
  '' index 1 using 1:($2 == 1 && $6 == 0 ? $3 : 1/0) with boxes fs solid 0.85 border -1 lc 2 title 'hakmem', \
  '' index 1 using 1:($2 == 1 && $6 == 1 ? $3 : 1/0) with boxes fs pattern 4 border -1 lc 2 notitle, \
  '' index 1 using 1:($2 == 2 && $6 == 0 ? $3 : 1/0) with boxes fs solid 0.85 border -1 lc 3 title 'mimalloc', \
  '' index 1 using 1:($2 == 2 && $6 == 1 ? $3 : 1/0) with boxes fs pattern 4 border -1 lc 3 notitle, \
  '' index 1 using 1:($2 == 3 && $6 == 0 ? $3 : 1/0) with boxes fs solid 0.85 border -1 lc 4 title 'tcmalloc', \
  '' index 1 using 1:($2 == 3 && $6 == 1 ? $3 : 1/0) with boxes fs pattern 4 border -1 lc 4 notitle, \
  '' index 1 using 1:3:4:5 with yerrorbars lc rgb 'black' pt 0 title 'range over the runs', \
  keyentry with boxes fs pattern 4 border -1 lc rgb 'gray30' title 'hatched: within noise'
unset multiplot
