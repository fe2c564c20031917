// Reading a step's arguments as its op's struct. The structs and their `read` (the fields in the
// order WORKER_OPS declares them, src/graph/opTable.ts) are generated into op_table.gen.hpp; the
// lowering (agent/program.ts) writes the step's `i` and `f` in that same order.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace fl {

/** Integers inside a step's `i`: per-dim shapes and strides, one value per rank. */
struct IntList {
  const int64_t* data = nullptr;
  int64_t size = 0;
  int64_t operator[](int64_t k) const { return data[k]; }
};

/** Walks a step's `i` and `f` in order; throws naming the op and what is missing or left over. */
class ArgReader {
 public:
  ArgReader(const std::vector<int64_t>& i, const std::vector<double>& f, const std::string& op, int64_t world)
      : i_(i), f_(f), op_(op), world_(world) {}
  int64_t integer(const char* name) {
    if (ni_ >= i_.size()) fail(std::string("is missing its argument '") + name + "'");
    return i_[ni_++];
  }
  /** `n` integers (a list whose length an earlier argument gives). */
  IntList list(const char* name, int64_t n) {
    if (n < 0 || (uint64_t)n > i_.size() - ni_)
      fail("needs " + std::to_string(n) + " values of '" + name + "', has " + std::to_string(i_.size() - ni_) + " left");
    IntList l{i_.data() + ni_, n};
    ni_ += (size_t)n;
    return l;
  }
  /** One integer per rank. */
  IntList perRank(const char* name) {
    if (world_ < 1) fail(std::string("reads '") + name + "' per rank: pass the world size");
    return list(name, world_);
  }
  double real(const char* name) {
    if (nf_ >= f_.size()) fail(std::string("is missing its argument '") + name + "'");
    return f_[nf_++];
  }
  void end() const {
    if (ni_ != i_.size() || nf_ != f_.size())
      fail("takes " + std::to_string(ni_) + " integer and " + std::to_string(nf_) + " float arguments, not " + std::to_string(i_.size()) + " and " +
           std::to_string(f_.size()));
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw std::runtime_error("step op '" + op_ + "' " + what); }
  const std::vector<int64_t>& i_;
  const std::vector<double>& f_;
  const std::string& op_;
  int64_t world_;
  size_t ni_ = 0, nf_ = 0;
};

/** A step's arguments as struct A (e.g. MoeArgs), all of them, in their declared order; `world` for per-rank lists. */
template <class A, class S>
A argsOf(const S& st, int64_t world = 0) {
  ArgReader r(st.i, st.f, st.opName, world);
  A a;
  a.read(r);
  r.end();
  return a;
}

}  // namespace fl
