// C++ kernel tests: a standalone program (no test framework) linked with the kernel sources
// (api.cpp, dispatch.cpp, threadpool.cpp, isa_scalar.cpp and isa_avx2.cpp or isa_neon.cpp).
// For every runnable ISA and both float and double it checks
//   - the vector exp and log1p against their contracts (math-inl.hpp), by dense sweeps;
//   - run_softmax (all five ops; in place too) and run_sigmoid (elementwise and summed)
//     through xent::ArrayRef, against a plain high-precision reference written here, on
//     row lengths around every vector width and the 2048-element block, with random, +-1e4,
//     -inf-masked (with NaN rows) and constant logits, in contiguous and strided layouts;
//   - run_hessian (all three ops, with sample weights) against the same kind of reference;
//   - run_sigmoid with options (class weights, pos_weight, per-row weights, label smoothing)
//     and the focal loss, and the vector log it uses (test_sigmoid_opt);
//   - each SIMD ISA against the scalar one, and 1, 2, 3 threads for bit-identical results;
//   - the vector tanh's contract, and the loss options and further ops (test_options.hpp);
//   - float16 / bfloat16 storage: conversions, losses and rounded gradients (test_half.hpp);
//   - the rows-in-lanes kernel for a class axis that is not the last, against the row
//     kernels (test_inner.hpp);
//   - the weight vectors' sum, check and narrowing, the same bits on every ISA (test_weights.hpp).
// Tolerances and their reasons are next to each check (test_math, test_softmax, test_sigmoid).
// Prints one line per check group and ends with "N passed, M failed"; exits 1 if M > 0.
// Usage: test_kernels [--quick] [--verbose]
//   --quick: sparser math sweeps (for slow emulators); --verbose: name each group's worst check
#include <cstring>
#include <exception>

#include "test_options.hpp"
#include "test_hessian.hpp"
#include "test_sigmoid_opt.hpp"
#include "test_log.hpp"
#include "test_proba.hpp"
#include "test_threads.hpp"
#include "test_half.hpp"
#include "test_inner.hpp"
#include "test_weights.hpp"

namespace {

template <class T>
void run_dtype(int64_t density) {
  using namespace xt;
  test_exp<T>(density);
  test_log1p<T>(density);
  test_tanh<T>(density);
  test_log<T>(density);
  report().flush();
  test_proba<T>(sizeof(T) * 77);
  report().flush();

  // Row lengths 1, W-1, W, W+1, 3W+1 for W in {2, 4, 8}; around the kernels' 2048-element
  // block; and long rows (fewer of them).
  const int64_t lengths[] = {1, 2, 3, 4, 5, 7, 8, 9, 13, 25, 2047, 2048, 2049, 5000, 50000};
  std::map<std::string, IsaOut> sm_scalar, sg_scalar, hs_scalar;
  uint64_t seed = sizeof(T) * 1000, hs_seed = sizeof(T) * 5000;
  for (int64_t C : lengths) {
    const int64_t R = C <= 5000 ? 6 : 2;
    for (Pattern p : {Pattern::kRandom, Pattern::kBig, Pattern::kMasked, Pattern::kConstant})
      for (bool strided : {false, true}) {
        if (strided && (p == Pattern::kBig || p == Pattern::kConstant)) continue;
        test_softmax_case(make_sm_case<T>(C, R, p, strided, ++seed), sm_scalar);
        test_sigmoid_case(make_sg_case<T>(C, R, p, strided, ++seed), sg_scalar);
        if (p != Pattern::kConstant) {  // own seeds: the other cases keep theirs
          hs_seed += 2;
          test_hessian_case(make_sm_case<T>(C, R, p, strided, hs_seed - 1), hs_seed, hs_scalar);
        }
      }
  }
  // many rows in a 2-d row space: several work units, each starting mid-batch
  test_softmax_case(make_sm_case<T>(700, 300, Pattern::kMasked, true, ++seed), sm_scalar);
  test_sigmoid_case(make_sg_case<T>(700, 300, Pattern::kMasked, true, ++seed), sg_scalar);
  // class-major rows (the strided layout's rows are adjacent along B): blocks of rows moved
  // by vector transposes (units-inl.hpp, gather_rows / scatter_rows), B = 67 rows not a
  // whole number of blocks or vectors, C = 133 not a whole number of vectors
  test_softmax_case(make_sm_case<T>(133, 134, Pattern::kRandom, true, ++seed), sm_scalar);
  // the rows-in-lanes kernels' moves (C <= 128 float32, 80 float64): a vector per class for
  // class-major rows, register transposes of whole groups of contiguous rows, the classes
  // past them one by one
  test_softmax_case(make_sm_case<T>(13, 74, Pattern::kMasked, true, ++seed), sm_scalar);
  test_softmax_case(make_sm_case<T>(13, 67, Pattern::kMasked, false, ++seed), sm_scalar);
  test_softmax_case(make_sm_case<T>(16, 64, Pattern::kRandom, false, ++seed), sm_scalar);
  test_softmax_case(make_sm_case<T>(61, 67, Pattern::kRandom, false, ++seed), sm_scalar);
  test_softmax_case(make_sm_case<T>(45, 134, Pattern::kMasked, true, ++seed), sm_scalar);
  test_softmax_case(make_sm_case<T>(sizeof(T) == 4 ? 123 : 77, 67, Pattern::kMasked, false, ++seed), sm_scalar);
  test_softmax_case(make_sm_case<T>(sizeof(T) == 4 ? 128 : 80, 50, Pattern::kRandom, true, ++seed), sm_scalar);
  report().flush();

  // sigmoid options and the focal loss (test_sigmoid_opt.hpp), with the vector log they use
  test_sigmoid_opts<T>();
  test_sigmoid_opt_loops<T>();
  report().flush();

  for (const std::string& isa : isas()) {
    test_threads<T>(isa);
    test_threads_opts<T>(isa);
    test_hessian_threads<T>(isa);
  }
  report().flush();
  test_options<T>();
  test_softcap_normalizers<T>();
  report().flush();
  test_inner<T>();
  report().flush();
  test_weight_stats<T>();
  report().flush();
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) quick = true;
    else if (std::strcmp(argv[i], "--verbose") == 0) xt::report().verbose = true;
    else {
      std::fprintf(stderr, "usage: %s [--quick] [--verbose]\n", argv[0]);
      return 2;
    }
  }
  const int64_t density = quick ? (1 << 17) : (1 << 20);
  std::string names;
  for (const auto& n : xt::isas()) names += " " + n;
  std::string idle;  // compiled, but this CPU cannot run them: their tests are skipped
  for (const auto& n : xent::compiled_isas())
    if (names.find(" " + n) == std::string::npos) idle += " " + n;
  std::printf("xent kernel tests; runnable ISAs:%s; math sweep density %lld\n", names.c_str(),
              static_cast<long long>(density));
  if (!idle.empty()) std::printf("SKIPPED, not runnable on this CPU:%s\n", idle.c_str());
  try {
    run_dtype<float>(density);
    run_dtype<double>(density);
    xt::test_half();  // float16 / bfloat16 storage of float32 computations
  } catch (const std::exception& e) {
    xt::report().check("exceptions", false, 0, e.what());
    xt::report().flush();
  }
  const long long passed = xt::report().passed(), failed = xt::report().failed();
  std::printf("%lld passed, %lld failed\n", passed, failed);
  return failed > 0 ? 1 : 0;
}
