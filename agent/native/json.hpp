// A small JSON reader and writer for the worker's control messages. The agent validates every
// message before it reaches the worker, so this only has to be correct, not forgiving; it still
// throws (never crashes) on malformed text so a bad frame becomes an error reply.
#pragma once
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace fl {

struct Json {
  enum Kind { Null, Bool, Num, Str, Arr, Obj } kind = Null;
  bool b = false;
  double n = 0;
  std::string s;
  std::vector<Json> a;
  std::map<std::string, Json> o;

  bool has(const std::string& k) const { return kind == Obj && o.count(k) > 0; }
  const Json& at(const std::string& k) const {
    auto it = o.find(k);
    if (kind != Obj || it == o.end()) throw std::runtime_error("missing field '" + k + "'");
    return it->second;
  }
  const Json& operator[](size_t i) const {
    if (kind != Arr || i >= a.size()) throw std::runtime_error("index out of range");
    return a[i];
  }
  double num() const {
    if (kind != Num) throw std::runtime_error("expected a number");
    return n;
  }
  int64_t i64() const { return (int64_t)num(); }
  const std::string& str() const {
    if (kind != Str) throw std::runtime_error("expected a string");
    return s;
  }
  const std::vector<Json>& arr() const {
    if (kind != Arr) throw std::runtime_error("expected an array");
    return a;
  }
  std::string strOr(const std::string& k, const std::string& d) const { return has(k) && at(k).kind == Str ? at(k).s : d; }
  double numOr(const std::string& k, double d) const { return has(k) && at(k).kind == Num ? at(k).n : d; }
};

class JsonReader {
 public:
  explicit JsonReader(const std::string& t) : t_(t) {}
  Json parse() {
    Json v = value(0);
    ws();
    if (p_ != t_.size()) fail("trailing characters");
    return v;
  }

 private:
  const std::string& t_;
  size_t p_ = 0;
  [[noreturn]] void fail(const char* what) { throw std::runtime_error(std::string("JSON: ") + what + " at offset " + std::to_string(p_)); }
  void ws() { while (p_ < t_.size() && (t_[p_] == ' ' || t_[p_] == '\n' || t_[p_] == '\r' || t_[p_] == '\t')) p_++; }
  bool lit(const char* w) {
    size_t n = std::char_traits<char>::length(w);
    if (t_.compare(p_, n, w) == 0) { p_ += n; return true; }
    return false;
  }
  Json value(int depth) {
    if (depth > 64) fail("nesting too deep");
    ws();
    if (p_ >= t_.size()) fail("unexpected end");
    Json v;
    char c = t_[p_];
    if (c == '{') {
      v.kind = Json::Obj; p_++; ws();
      if (p_ < t_.size() && t_[p_] == '}') { p_++; return v; }
      for (;;) {
        ws();
        if (p_ >= t_.size() || t_[p_] != '"') fail("expected a key");
        std::string k = string();
        ws();
        if (p_ >= t_.size() || t_[p_] != ':') fail("expected ':'");
        p_++;
        v.o[k] = value(depth + 1);
        ws();
        if (p_ < t_.size() && t_[p_] == ',') { p_++; continue; }
        if (p_ < t_.size() && t_[p_] == '}') { p_++; return v; }
        fail("expected ',' or '}'");
      }
    }
    if (c == '[') {
      v.kind = Json::Arr; p_++; ws();
      if (p_ < t_.size() && t_[p_] == ']') { p_++; return v; }
      for (;;) {
        v.a.push_back(value(depth + 1));
        ws();
        if (p_ < t_.size() && t_[p_] == ',') { p_++; continue; }
        if (p_ < t_.size() && t_[p_] == ']') { p_++; return v; }
        fail("expected ',' or ']'");
      }
    }
    if (c == '"') { v.kind = Json::Str; v.s = string(); return v; }
    if (lit("true")) { v.kind = Json::Bool; v.b = true; return v; }
    if (lit("false")) { v.kind = Json::Bool; return v; }
    if (lit("null")) return v;
    size_t start = p_;
    while (p_ < t_.size() && (isdigitc(t_[p_]) || t_[p_] == '-' || t_[p_] == '+' || t_[p_] == '.' || t_[p_] == 'e' || t_[p_] == 'E')) p_++;
    if (start == p_) fail("unexpected character");
    v.kind = Json::Num;
    try { v.n = std::stod(t_.substr(start, p_ - start)); } catch (...) { fail("bad number"); }
    return v;
  }
  static bool isdigitc(char c) { return c >= '0' && c <= '9'; }
  std::string string() {
    p_++;  // opening quote
    std::string out;
    while (p_ < t_.size() && t_[p_] != '"') {
      char c = t_[p_++];
      if (c != '\\') { out.push_back(c); continue; }
      if (p_ >= t_.size()) fail("bad escape");
      char e = t_[p_++];
      switch (e) {
        case 'n': out.push_back('\n'); break;
        case 't': out.push_back('\t'); break;
        case 'r': out.push_back('\r'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'u': {
          if (p_ + 4 > t_.size()) fail("bad \\u escape");
          unsigned cp = std::stoul(t_.substr(p_, 4), nullptr, 16);
          p_ += 4;
          // Names in graphs are ASCII; anything else is kept as UTF-8 of the BMP code point.
          if (cp < 0x80) out.push_back((char)cp);
          else if (cp < 0x800) { out.push_back((char)(0xC0 | (cp >> 6))); out.push_back((char)(0x80 | (cp & 0x3F))); }
          else { out.push_back((char)(0xE0 | (cp >> 12))); out.push_back((char)(0x80 | ((cp >> 6) & 0x3F))); out.push_back((char)(0x80 | (cp & 0x3F))); }
          break;
        }
        default: out.push_back(e);
      }
    }
    if (p_ >= t_.size()) fail("unterminated string");
    p_++;
    return out;
  }
};

inline std::string jsonQuote(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') { o.push_back('\\'); o.push_back(c); }
    else if ((unsigned char)c < 0x20) { char b[8]; snprintf(b, sizeof b, "\\u%04x", c); o += b; }
    else o.push_back(c);
  }
  return o + "\"";
}

inline std::string jsonNum(double v) {
  char b[32];
  snprintf(b, sizeof b, "%.9g", v);
  return b;
}

}  // namespace fl
