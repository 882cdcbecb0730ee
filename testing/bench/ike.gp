# SPDX-License-Identifier: GPL-2.0-or-later
# Handshake and CHILD_SA rekey time per variant: bar = median, error bar = min..p95.
# gnuplot -e "term='pngcairo'; out='ike.png'; csv='ike-summary.csv'" ike.gp
set terminal term size 900,420 font ",10"
set output out
set datafile separator ","
set style fill solid 0.6 border -1
set boxwidth 0.6
set grid ytics
set yrange [0:*]
set ylabel "ms (wire, gwA WAN)"
set xtics nomirror
set multiplot layout 1,2 title "IKEv2 on the wire: QKD vs plain PSK (bar: median, whiskers: min..p95)"
set title "full handshake (IKE\\_SA\\_INIT + IKE\\_AUTH)"
plot csv every ::1 using 0:4:xtic(1) with boxes lc rgb "#4477aa" notitle, \
     '' every ::1 using 0:4:3:5 with yerrorbars lc rgb "black" pt 0 notitle, \
     '' every ::1 using 0:4:(sprintf("%.2f", $4)) with labels offset 0,0.7 left notitle
set title "CHILD\\_SA rekey (CREATE\\_CHILD\\_SA)"
plot csv every ::1 using 0:9:xtic(1) with boxes lc rgb "#ee6677" notitle, \
     '' every ::1 using 0:9:8:10 with yerrorbars lc rgb "black" pt 0 notitle, \
     '' every ::1 using 0:9:(sprintf("%.2f", $9)) with labels offset 0,0.7 left notitle
unset multiplot
