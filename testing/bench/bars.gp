# SPDX-License-Identifier: GPL-2.0-or-later
# Bars of one statistic per label: bar = median, whiskers = min..max (columns label,min,median,max).
# gnuplot -e "term='pngcairo'; out='x.png'; csv='x.csv'; title='...'; ylabel='ms'; logy=0" bars.gp
set terminal term size 1000,460 font ",10"
set output out
set datafile separator ","
set title title
set ylabel ylabel
set style fill solid 0.6 border -1
set boxwidth 0.55
set grid ytics
set xtics nomirror noenhanced
set title noenhanced
if (logy) { set logscale y; set yrange [*:*] } else { set yrange [0:*] }
set offsets 0.5, 0.5, 0, 0
plot csv every ::1 using 0:3:xtic(1) with boxes lc rgb "#4477aa" notitle, \
     '' every ::1 using 0:3:2:4 with yerrorbars lc rgb "black" pt 7 ps 0.4 notitle, \
     '' every ::1 using 0:3:(sprintf("  %.3g", $3)) with labels left offset 0,0.8 notitle
