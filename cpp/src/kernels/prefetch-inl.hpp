// Software prefetches ahead of a streaming pass, for the loops whose own work leaves no
// load in flight (the sigmoid losses' option loops, the softmax losses' soft cap pass).
#pragma once
#include <cstdint>

namespace xent {
namespace XENT_ISA_NS {

// How far ahead of a block the sigmoid losses with options prefetch their operands, in
// bytes, and from which size of a job's operands (logits, targets, gradient) on: out of
// cache, an option loop's stages (exp, log1p, then the rest) computed with no load in flight
// (10000 x 1000 float32, 1 thread: class weights or pos_weight 1.3-1.4x the plain loss's
// time, 1.2x with it); in cache the prefetches cost 5-9% (2048 x 256). The plain loss
// measured 0.95-1.03x with them (left out). The softmax losses' soft cap pass
// (softcap-inl.hpp) prefetches the logits as far ahead, in jobs of the same threshold
// (units-inl.hpp, big_job).
constexpr int64_t kPrefetchAhead = 4096;
constexpr int64_t kPrefetchMinBytes = int64_t{16} << 20;

// Prefetches the lines of n elements at p, kPrefetchAhead bytes on (for a write if Write).
template <bool Write = false, class T>
XENT_FORCE_INLINE void prefetch_ahead(const T* p, int64_t n) {
  const char* const c = reinterpret_cast<const char*>(p) + kPrefetchAhead;
  for (int64_t b = 0; b < n * static_cast<int64_t>(sizeof(T)); b += 64) __builtin_prefetch(c + b, Write ? 1 : 0);
}

}  // namespace XENT_ISA_NS
}  // namespace xent
