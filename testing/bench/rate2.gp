# SPDX-License-Identifier: GPL-2.0-or-later
# Two panels against the key update rate (categorical x): left column group 2-7 (standard
# min/med/max, ours min/med/max), right 8-13; points = median, whiskers = min..max.
# gnuplot -e "term='pngcairo'; out='x.png'; csv='x.csv'; title='..'; ylabel1='..'; ylabel2='..'; logy1=0" rate2.gp
set terminal term size 1000,480 font ",10"
set output out
set datafile separator ","
set grid
set xlabel "key updates per second (0 = none)"
set xtics nomirror
set key below
set offsets 0.3, 0.3, 0, 0
set multiplot layout 1,2 title title noenhanced
set ylabel ylabel1
if (logy1) { set logscale y } else { set yrange [0:*] }
plot csv every ::1 using ($0-0.05):3:2:4:xtic(1) with yerrorlines lw 2 pt 7 lc rgb "#cc3311" title "standard IPsec (CREATE\\_CHILD\\_SA)", \
     '' every ::1 using ($0+0.05):6:5:7 with yerrorlines lw 2 pt 5 lc rgb "#0077bb" title "IPSeQ, ours (window switch)"
unset logscale y
set yrange [0:*]
set ylabel ylabel2
plot csv every ::1 using ($0-0.05):9:8:10:xtic(1) with yerrorlines lw 2 pt 7 lc rgb "#cc3311" title "standard IPsec", \
     '' every ::1 using ($0+0.05):12:11:13 with yerrorlines lw 2 pt 5 lc rgb "#0077bb" title "IPSeQ, ours"
unset multiplot
