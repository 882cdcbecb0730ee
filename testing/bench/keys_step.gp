# SPDX-License-Identifier: GPL-2.0-or-later
# A load or supply step of scripts/bench keys over time. Steps at e1 and e2 seconds. Three files:
# csv (qkid's view, 0.5 s): t_s,offered_mbps,rpk_qkid,buffer_level,buffer_capacity,sa_keys_per_s,
#   sa_packets_per_s,starved,kme_keys_per_s,qkid_keys_in_per_s,dp_rpk,dp_level,dp_capacity,
#   share_keys_per_s,beyond_rpk,stall_drops;
# csv minus ".csv" plus "_trace.csv" (the datapath's rpk_trace, 100 ms): t_s,rpk,keys_ahead,
#   target_level,share_keys_per_s,packets_per_s,windows_per_s,beyond_rpk,stall_drops;
# csv minus ".csv" plus "_wire.csv" (1 s): t_s,rpk_wire,windows_per_s_wire. "nan" = not measured.
# gnuplot -e "term='pngcairo'; out='x.png'; csv='step_load.csv'; title='..'; e1=20; e2=40" keys_step.gp
wire = csv[1:strlen(csv)-4] . "_wire.csv"
trace = csv[1:strlen(csv)-4] . "_trace.csv"
set terminal term size 1000,1100 font ",10"
set output out
set datafile separator ","
set datafile missing "nan"
set grid
set xrange [0:*]
set key outside right top
set lmargin 12
set rmargin 32
set arrow 1 from e1, graph 0 to e1, graph 1 nohead dt 2 lc rgb "#777777"
set arrow 2 from e2, graph 0 to e2, graph 1 nohead dt 2 lc rgb "#777777"
set multiplot layout 4,1 title title noenhanced
set ylabel "rpk (packets per key)"
set logscale y
plot trace every ::1 using 1:2 with steps lw 2 lc rgb "#cc3311" title "rpk in force (datapath)", \
     csv every ::1 using 1:3 with steps lw 1 lc rgb "#ee7733" title "qkid advice", \
     wire every ::1 using 1:2 with linespoints pt 7 ps 0.6 lc rgb "#0077bb" title "on the wire"
unset logscale y
set ylabel "window keys"
set yrange [0:*]
plot trace every ::1 using 1:3 with steps lw 2 lc rgb "#cc3311" title "held ahead (datapath)", \
     trace every ::1 using 1:4 with steps lw 1 dt 2 lc rgb "#000000" title "loop's target", \
     csv every ::1 using 1:4 with steps lw 1 lc rgb "#009988" title "qkid SA buffer"
set ylabel "keys/s"
plot csv every ::1 using 1:9 with lines lw 2 lc rgb "#cc3311" title "KME generated", \
     csv every ::1 using 1:10 with lines lw 1 lc rgb "#ee3377" title "qkid took in", \
     trace every ::1 using 1:5 with steps lw 2 dt 2 lc rgb "#000000" title "SA fair share", \
     trace every ::1 using 1:7 with lines lw 2 lc rgb "#0077bb" title "windows/s (datapath)", \
     wire every ::1 using 1:3 with points pt 7 ps 0.6 lc rgb "#33bbee" title "windows/s on the wire"
set ylabel "packets (cumulative)"
set xlabel "seconds"
plot trace every ::1 using 1:8 with steps lw 2 lc rgb "#cc3311" title "sent beyond rpk", \
     trace every ::1 using 1:9 with steps lw 1 lc rgb "#555555" title "stall drops"
unset multiplot
