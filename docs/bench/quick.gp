set terminal pngcairo font "sans,10" size 1160,900 noenhanced
set output 'quick.png'
set datafile missing '-'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set key outside right top vertical
set xtics rotate by -30 nomirror
set yrange [0:*]
set offsets 0, 0, graph 0.05, 0
set lmargin 10
set rmargin 16
set multiplot layout 2,1 title "scripts/larson.sh quick -- 2026-11-27T08:25Z, hakmem 8eabbfe\nAMD EPYC, 2 cpus, 24 GiB RAM, Linux 6.18.44-fc-v669, Debian GNU/Linux 12 (bookworm)" font ',11'
set title 'throughput relative to mimalloc (median Mops/s; higher is better)'
set ylabel 'x mimalloc'
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 1.5 lc rgb 'black' front
plot 'quick.dat' index 0 using 2:xtic(1) title columnheader(2), '' index 0 using 3 title columnheader(3), '' index 0 using 4 title columnheader(4), '' index 0 using 5 title columnheader(5), '' index 0 using 6 title columnheader(6)
set title 'peak RSS relative to mimalloc (median; lower is better)'
unset key
plot 'quick.dat' index 1 using 2:xtic(1) title columnheader(2), '' index 1 using 3 title columnheader(3), '' index 1 using 4 title columnheader(4), '' index 1 using 5 title columnheader(5), '' index 1 using 6 title columnheader(6)
unset multiplot
