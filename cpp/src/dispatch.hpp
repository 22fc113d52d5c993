// Run-time choice of the kernel set.
#pragma once
#include <string>
#include <vector>

#include "xent/jobs.hpp"

namespace xent {

const Isa* isa_scalar();
#if defined(XENT_HAVE_AVX2)
const Isa* isa_avx2();
const Isa* isa_avx512();
#endif
#if defined(XENT_HAVE_NEON)
const Isa* isa_neon();
#endif

// ISAs compiled into this build, and those of them this CPU can run (scalar always).
std::vector<std::string> compiled_isas();
std::vector<std::string> runnable_isas();
// The kernel set in use: chosen once, from XENT_ISA if set, else the best runnable one.
const Isa* active_isa();
// Forces a kernel set; returns false (and changes nothing) if it is unknown or cannot run.
bool set_active_isa(const std::string& name);
// Empty if XENT_ISA is unset or valid; otherwise the reason it was rejected.
std::string isa_env_error();

}  // namespace xent
