// bench/stream_bandwidth.hpp — streaming-read bandwidth of this machine, measured now.
#pragma once

namespace simdattn::bench {

/// Median bytes/s of three parallel streaming reads (after one warm-up) of a 1 GiB buffer by
/// `threads` threads, each summing one contiguous slice with eight independent vector
/// accumulators (AVX2 where the CPU has it). Measure it right next to what it is compared with,
/// so that both see the same state of a shared machine.
double stream_bandwidth(int threads);

/// Seconds for one such parallel read of the first `bytes` (<= 1 GiB) of the same buffer: a
/// bandwidth sample to interleave with what it is compared with (a pass of 512 MiB also
/// leaves nothing of the previous work in any L3).
double stream_read_seconds(int threads, double bytes);

}  // namespace simdattn::bench
