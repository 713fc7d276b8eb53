#!/usr/bin/env bash
# tests/cli/demo.sh — `simdattn demo` exits 0 and prints the book's values for the parts that do
# not depend on random weights (§3.3): scores of query 2, its softmax weights, z(2), and the
# context vectors of all tokens.
# usage: demo.sh SIMDATTN
set -euo pipefail
out=$("$1" demo)
expect() {
  grep -qF -- "$1" <<<"$out" || { echo "demo output lacks '$1'" >&2; exit 1; }
}
expect "0.9544   1.4950   1.4754   0.8434   0.7070   1.0865"   # §3.3.1 attention scores w(2)
expect "0.1455   0.2278   0.2249   0.1285   0.1077   0.1656"   # normalised by the sum
expect "0.1385   0.2379   0.2333   0.1240   0.1082   0.1581"   # softmax
expect "0.4419   0.6515   0.5683"                             # z(2)
expect "0.9995   0.9544   0.9422   0.4753   0.4576   0.6310"   # §3.3.2 first row of X·Xᵀ
expect "0.2098   0.2006   0.1981   0.1242   0.1220   0.1452"   # its softmax
expect "0.4421   0.5931   0.5790"                             # context vector of "Your"
expect "0.4177   0.6503   0.5645"                             # context vector of "step"
expect "shape [2, 6, 2]"                                      # §3.5.3 / §3.6.2
expect "shape [2, 6, 4]"                                      # §3.6.1 wrapper
expect "-inf"                                                 # §3.5.1 masked scores
echo "demo: book values present"
