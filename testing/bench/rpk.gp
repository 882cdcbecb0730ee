# SPDX-License-Identifier: GPL-2.0-or-later
# rpk settled at per offered UDP load (categorical x): packets per window on the wire and qkid's
# advice; right panel: delivered Mbit/s. Columns: load, rpk min/med/max, mbps min/med/max,
# advice min/med/max.
# gnuplot -e "term='pngcairo'; out='x.png'; csv='fig3b_rpk.csv'; title='..'" rpk.gp
set terminal term size 1000,440 font ",10"
set output out
set datafile separator ","
set grid
set xlabel "offered UDP load, Mbit/s"
set xtics nomirror
set offsets 0.3, 0.3, 0, 0
set multiplot layout 1,2 title title noenhanced
set ylabel "packets per quantum key (rpk)"
set logscale y
set key top left
plot csv every ::1 using ($0-0.05):3:2:4:xtic(1) with yerrorlines lw 2 pt 7 lc rgb "#0077bb" title "on the wire (median, min..max)", \
     '' every ::1 using ($0+0.05):9:8:10 with yerrorlines lw 1 dt 2 pt 5 lc rgb "#ee7733" title "qkid advice"
unset logscale y
set yrange [0:*]
set ylabel "delivered Mbit/s"
set key top left
plot csv every ::1 using 0:6:5:7:xtic(1) with yerrorlines lw 2 pt 7 lc rgb "#009988" title "delivered (median, min..max)", \
     '' every ::1 using 0:1 with lines dt 3 lc rgb "#555555" title "offered"
unset multiplot
