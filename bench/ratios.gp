# The benchmark's ratio chart. bench/report.py writes the data and calls:
#   gnuplot -e "data='FILE'; out='PNG'; subtitle='...'" bench/ratios.gp
# Data columns: index, ours/reference, ours/(nginx or direct pull), target ratio, label.
# Log scale: 0.5x and 2x are the same distance from 1x. NaN = not applicable.
set terminal pngcairo size 1280,720 font "DejaVu Sans,10"
set output out
set title "docker-cache-proxy: ratios (".subtitle.")"
set datafile missing "NaN"
set logscale y 10
set yrange [0.005:1000]
set ytics ("0.01×" 0.01, "0.1×" 0.1, "0.5×" 0.5, "1×" 1, "2×" 2, "10×" 10, "100×" 100, "1000×" 1000)
set grid ytics
set xtics rotate by -30 left nomirror
set xrange [0.3:*]
set key top left
set style fill solid 0.8 border -1
set boxwidth 0.38
set bmargin 12
set rmargin 30
plot data using ($1 - 0.2):2:xtic(5) with boxes lc rgb "#4477aa" title "ours / reference", \
     data using ($1 + 0.2):3 with boxes lc rgb "#ee6677" title "ours / nginx or direct pull", \
     data using 1:4 with points pt 9 ps 1.6 lc rgb "#228833" title "target ratio", \
     1 with lines dt 2 lc rgb "black" notitle
