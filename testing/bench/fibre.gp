# SPDX-License-Identifier: GPL-2.0-or-later
# Secret key rate vs fibre length: model line and keys/s delivered to qkid (median, min..max).
# gnuplot -e "term='pngcairo'; out='x.png'; csv='fig3a_fibre.csv'" fibre.gp
set terminal term size 800,460 font ",10"
set output out
set datafile separator ","
set title "QKD key supply vs fibre length (qkd-kmsd model 100 kbit/s x 10^{-0.02 L}, 256-bit keys)"
set xlabel "fibre length km"
set ylabel "keys/s"
set logscale y
set grid
set key top right
set xrange [-5:105]
plot csv every ::1 using 1:2 with lines lw 2 dt 2 lc rgb "#555555" title "model (0.2 dB/km)", \
     '' every ::1 using 1:4:3:5 with yerrorbars pt 7 ps 1.2 lw 2 lc rgb "#0077bb" title "delivered to qkid (median, min..max)", \
     '' every ::1 using 1:4:(sprintf("%.1f", $4)) with labels offset 0,1.2 notitle
