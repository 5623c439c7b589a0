set terminal pngcairo font "sans,10" size 900,900 noenhanced
set output 'real.png'
set style fill solid 0.85 border -1
set boxwidth 0.16 absolute
set grid ytics
set key outside right top vertical Left reverse
set xtics ('python_objects' 0, 'python_json' 1, 'perl_hash' 2, 'sort' 3, 'sqlite_index' 4) rotate by -30 nomirror
set xrange [-0.6:4.6]
set lmargin 10
set rmargin 26
set multiplot layout 2,1 title "scripts/larson.sh real -- 2026-12-01T20:44Z, hakmem 5d405ee\nAMD EPYC, 2 cpus, 24 GiB RAM, Linux 6.18.44-fc-v1045, Debian GNU/Linux 12 (bookworm)" font ',11'
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 1.5 lc rgb 'black' front
set title 'speed relative to mimalloc (mimalloc''s median seconds / median seconds; higher is better)'
set ylabel 'x mimalloc'
set yrange [0:1.537]
plot 'real.dat' index 0 using 1:($2 == 0 && $6 == 0 ? $3 : 1/0) with boxes fs solid 0.85 border -1 lc 1 title 'hakmem', \
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
set yrange [0:1.842]
plot 'real.dat' index 1 using 1:($2 == 0 && $6 == 0 ? $3 : 1/0) with boxes fs solid 0.85 border -1 lc 1 title 'hakmem', \
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
