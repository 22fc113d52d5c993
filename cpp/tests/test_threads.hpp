// Thread-count independence: 1, 2 and 3 threads must give bit-identical outputs and
// return values (api.cpp cuts work into tasks by shape only and adds partial results in
// task order). The batches are above api.cpp's 65536-element parallel threshold.
#pragma once
#include "test_sigmoid.hpp"
#include "test_softmax.hpp"

namespace xt {

template <class V>
bool same_bits(const V& a, const V& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(a[0])) == 0);
}

template <class T>
void test_threads(const std::string& isa) {
  using xent::SoftmaxOp;
  use_isa(isa);
  const std::string g = isa + " " + dtype_name<T>() + " threads 1/2/3";
  const int64_t C = 700, R = 300;  // 210000 elements, 7 tasks of 46 rows
  const char* names[] = {"logsumexp", "softmax", "log_softmax", "xent_label", "xent_target"};
  // random logits (finite sums, where a different order would show), and masks and NaN
  for (int v = 0; v < 3; ++v) {
    const bool strided = v > 0;
    const Pattern pat = v == 2 ? Pattern::kMasked : Pattern::kRandom;
    const SmCase<T> k = make_sm_case<T>(C, R, pat, strided, 99 + v, false);
    for (int op = 0; op < 5; ++op) {
      const auto sop = static_cast<SoftmaxOp>(op);
      const bool want_out = sop != SoftmaxOp::kLogsumexp;
      const bool want_rows = sop != SoftmaxOp::kSoftmax && sop != SoftmaxOp::kLogSoftmax;
      const SmRun<T> r1 = run_sm(k, sop, want_out, want_rows, 1);
      bool ok = true;
      for (int th : {2, 3}) {
        const SmRun<T> rt = run_sm(k, sop, want_out, want_rows, th);
        ok = ok && same_bits(rt.out, r1.out) && same_bits(rt.rows, r1.rows) &&
             std::memcmp(&rt.ret, &r1.ret, sizeof(double)) == 0;
      }
      report().check(g, ok, 0, fmt("softmax %s %s bit-identical for 1, 2, 3 threads", names[op], k.name.c_str()));
    }
    const SgCase<T> s = make_sg_case<T>(C, R, pat, strided, 97 + v, false);
    for (bool elementwise : {true, false}) {
      const SgRun<T> r1 = run_sg(s, elementwise, true, true, 1.0 / 3, 1);
      bool ok = true;
      for (int th : {2, 3}) {
        const SgRun<T> rt = run_sg(s, elementwise, true, true, 1.0 / 3, th);
        ok = ok && same_bits(rt.loss, r1.loss) && same_bits(rt.grad, r1.grad) &&
             std::memcmp(&rt.ret, &r1.ret, sizeof(double)) == 0;
      }
      report().check(g, ok, 0,
                     fmt("sigmoid %s %s bit-identical for 1, 2, 3 threads", elementwise ? "elementwise" : "summed",
                         s.name.c_str()));
    }
  }
}

}  // namespace xt
