# SPDX-License-Identifier: GPL-2.0-or-later
# A load or supply step of scripts/bench keys over time: rpk (qkid and on the wire), the SA's key
# buffer, and key rates (KME generated, qkid took in, SA drained). Steps at e1 and e2 seconds.
# csv: t_s,offered_mbps,rpk_qkid,buffer_level,buffer_capacity,sa_keys_per_s,sa_packets_per_s,
#      starved,kme_keys_per_s,qkid_keys_in_per_s,dp_rpk,dp_level,dp_capacity,share_keys_per_s,
#      beyond_rpk,stall_drops (dp_* and share: "nan" where the datapath does not report them); csv minus ".csv" plus "_wire.csv": t_s,rpk_wire,
#      windows_per_s_wire.
# gnuplot -e "term='pngcairo'; out='x.png'; csv='step_load.csv'; title='..'; e1=20; e2=40" keys_step.gp
wire = csv[1:strlen(csv)-4] . "_wire.csv"
set terminal term size 1000,900 font ",10"
set output out
set datafile separator ","
set datafile missing "nan"
set grid
set key outside right top
set lmargin 12
set rmargin 30
set arrow 1 from e1, graph 0 to e1, graph 1 nohead dt 2 lc rgb "#777777"
set arrow 2 from e2, graph 0 to e2, graph 1 nohead dt 2 lc rgb "#777777"
set multiplot layout 3,1 title title noenhanced
set ylabel "rpk (packets per key)"
set logscale y
plot csv every ::1 using 1:11 with steps lw 2 lc rgb "#cc3311" title "rpk in force (datapath)", \
     '' every ::1 using 1:3 with steps lw 1 lc rgb "#ee7733" title "qkid advice", \
     wire every ::1 using 1:2 with linespoints pt 7 ps 0.6 lc rgb "#0077bb" title "on the wire"
unset logscale y
set ylabel "SA key buffer (keys)"
set yrange [0:*]
plot csv every ::1 using 1:12 with steps lw 2 lc rgb "#cc3311" title "datapath keys ahead", \
     '' every ::1 using 1:4 with steps lw 2 lc rgb "#009988" title "qkid SA buffer", \
     '' every ::1 using 1:5 with lines dt 3 lc rgb "#555555" title "qkid buffer capacity"
set ylabel "keys/s"
set xlabel "seconds"
plot csv every ::1 using 1:9 with lines lw 2 lc rgb "#cc3311" title "KME generated", \
     '' every ::1 using 1:10 with lines lw 1 lc rgb "#ee3377" title "qkid took in", \
     '' every ::1 using 1:6 with lines lw 2 lc rgb "#0077bb" title "SA drain (qkid EWMA)", \
     '' every ::1 using 1:14 with steps lw 2 dt 2 lc rgb "#000000" title "SA fair share", \
     wire every ::1 using 1:3 with linespoints pt 7 ps 0.6 lc rgb "#33bbee" title "windows/s on the wire"
unset multiplot
