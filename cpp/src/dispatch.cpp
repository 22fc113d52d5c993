// CPU detection and the XENT_ISA override (simdjson's model: detect lazily, once).
#include "dispatch.hpp"

#include <atomic>
#include <cstdlib>
#if defined(XENT_HAVE_AVX2) && defined(_MSC_VER) && !defined(__clang__)
#include <immintrin.h>
#include <intrin.h>
#endif

namespace xent {
namespace {

#if defined(XENT_HAVE_AVX2)
// AVX2, FMA and F16C (the float16 conversions of isa_avx2.cpp): every CPU with AVX2 has
// F16C, but a virtual machine may hide it, so it is checked like the others.
bool cpu_has_avx2_fma() {
#if defined(__GNUC__) || defined(__clang__)
  // libgcc checks the CPUID bits and that the OS saves the YMM state (XGETBV).
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#elif defined(_MSC_VER)
  // CPUID.1:ECX has FMA (12), OSXSAVE (27), AVX (28), F16C (29); XCR0 bits 1-2: the OS saves XMM and YMM;
  // CPUID.7.0:EBX bit 5 is AVX2. (Not compiled on this project's CI: cibuildwheel's Windows job.)
  int r[4];
  __cpuid(r, 0);
  if (r[0] < 7) return false;
  __cpuid(r, 1);
  const unsigned ecx = static_cast<unsigned>(r[2]);
  if (!((ecx >> 12) & 1) || !((ecx >> 27) & 1) || !((ecx >> 28) & 1) || !((ecx >> 29) & 1)) return false;
  if ((_xgetbv(0) & 6) != 6) return false;
  __cpuidex(r, 7, 0);
  return (static_cast<unsigned>(r[1]) >> 5) & 1;
#else
  return false;
#endif
}

// AVX-512 F, DQ, BW and VL (isa_avx512.cpp's flags), on top of the avx2 set's checks.
bool cpu_has_avx512() {
  if (!cpu_has_avx2_fma()) return false;
#if defined(__GNUC__) || defined(__clang__)
  // libgcc checks the CPUID bits and that the OS saves the opmask and ZMM state (XGETBV).
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
#elif defined(_MSC_VER)
  // XCR0 bits 5-7: the OS saves the opmask registers and both halves of the ZMM state;
  // CPUID.7.0:EBX bits 16 (F), 17 (DQ), 30 (BW), 31 (VL). (Not compiled on this project's CI.)
  if ((_xgetbv(0) & 0xE6) != 0xE6) return false;
  int r[4];
  __cpuidex(r, 7, 0);
  const unsigned ebx = static_cast<unsigned>(r[1]);
  return ((ebx >> 16) & 1) && ((ebx >> 17) & 1) && ((ebx >> 30) & 1) && ((ebx >> 31) & 1);
#else
  return false;
#endif
}
#endif

const Isa* find(const std::string& name) {
  if (name == "scalar") return isa_scalar();
#if defined(XENT_HAVE_AVX2)
  if (name == "avx2") return cpu_has_avx2_fma() ? isa_avx2() : nullptr;
  if (name == "avx512") return cpu_has_avx512() ? isa_avx512() : nullptr;
#endif
#if defined(XENT_HAVE_NEON)
  if (name == "neon") return isa_neon();  // Advanced SIMD is mandatory on AArch64
#endif
  return nullptr;
}

std::string& env_error() {
  static std::string e;
  return e;
}

const Isa* choose() {
  if (const char* env = std::getenv("XENT_ISA")) {
    if (*env) {
      if (const Isa* isa = find(env)) return isa;
      std::string names;
      for (const auto& n : runnable_isas()) names += (names.empty() ? "" : ", ") + n;
      env_error() = std::string("XENT_ISA=") + env + " is not a kernel set this build can run here (available: " +
                    names + ")";
    }
  }
  const std::vector<std::string> r = runnable_isas();
  return find(r.back());
}

std::atomic<const Isa*>& slot() {
  static std::atomic<const Isa*> s{choose()};
  return s;
}

}  // namespace

std::vector<std::string> compiled_isas() {
  std::vector<std::string> v{"scalar"};
#if defined(XENT_HAVE_AVX2)
  v.push_back("avx2");
  v.push_back("avx512");
#endif
#if defined(XENT_HAVE_NEON)
  v.push_back("neon");
#endif
  return v;
}

std::vector<std::string> runnable_isas() {
  std::vector<std::string> v;
  for (const auto& n : compiled_isas())
    if (find(n)) v.push_back(n);
  return v;
}

const Isa* active_isa() { return slot().load(std::memory_order_acquire); }

bool set_active_isa(const std::string& name) {
  const Isa* isa = find(name);
  if (!isa) return false;
  slot().store(isa, std::memory_order_release);
  return true;
}

std::string isa_env_error() {
  active_isa();
  return env_error();
}

}  // namespace xent
