// bench/stream_bandwidth.hpp — streaming-read bandwidth of this machine, measured now.
#pragma once

namespace simdattn::bench {

/// Median bytes/s of three parallel streaming reads (after one warm-up) of a 1 GiB buffer by
/// `threads` threads, each summing one contiguous slice with eight independent vector
/// accumulators (AVX2 where the CPU has it). Measure it right next to what it is compared with,
/// so that both see the same state of a shared machine.
double stream_bandwidth(int threads);

}  // namespace simdattn::bench
