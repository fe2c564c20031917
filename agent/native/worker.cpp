// fusionlab-worker: executes planned programs for the agent (agent/server.ts).
// stdin/stdout carry frames: u32 header length, u64 payload length (both little-endian), a JSON
// header, then the payload (tensor bytes). One request at a time; stdout carries only frames,
// stderr carries diagnostics.
//
// Requests:  {"type":"hello"}  |  {"type":"run", ...Program}  |  {"type":"exit"}
// Replies:   {"type":"hello", device report}  |  {"type":"step","i":k} before each step (so a
//            crash can be pinned to its node)  |  {"type":"result", ...} + output bytes  |
//            {"type":"error","node":...,"message":...}
#include <cstdio>
#include <cstring>
#include <mutex>
#include <unistd.h>
#include <string>
#include <vector>

#include "executors.hpp"

using namespace fl;

namespace {

constexpr uint32_t kMaxHeader = 256u << 20;
constexpr uint64_t kMaxPayload = 64ull << 30;

bool readExact(void* dst, size_t n) {
  size_t got = fread(dst, 1, n, stdin);
  return got == n;
}

std::mutex g_out;   // rank threads report progress and failures concurrently
std::string g_runId;

void writeFrame(const std::string& header, const std::vector<const std::vector<uint8_t>*>& parts = {}) {
  std::lock_guard<std::mutex> lock(g_out);
  uint32_t hl = (uint32_t)header.size();
  uint64_t pl = 0;
  for (auto* p : parts) pl += p->size();
  fwrite(&hl, 4, 1, stdout);
  fwrite(&pl, 8, 1, stdout);
  fwrite(header.data(), 1, header.size(), stdout);
  for (auto* p : parts) fwrite(p->data(), 1, p->size(), stdout);
  fflush(stdout);
}

void writeError(const std::string& id, const std::string& node, const std::string& msg, bool fatal = false) {
  std::string h = "{\"type\":\"error\",\"id\":" + jsonQuote(id) + ",\"fatal\":" + (fatal ? "true" : "false");
  if (!node.empty()) h += ",\"node\":" + jsonQuote(node);
  h += ",\"message\":" + jsonQuote(msg) + "}";
  writeFrame(h);
}

std::string reportJson(const DeviceReport& d) {
  std::string s = "{\"type\":\"hello\",\"protocol\":1,\"mode\":" + jsonQuote(d.mode);
  if (!d.reason.empty()) s += ",\"reason\":" + jsonQuote(d.reason);
  s += ",\"cuda\":" + (d.cudaVersion.empty() ? std::string("null") : jsonQuote(d.cudaVersion));
  s += ",\"nccl\":" + (d.ncclVersion.empty() ? std::string("null") : jsonQuote(d.ncclVersion));
  s += ",\"gpus\":[";
  for (size_t i = 0; i < d.gpus.size(); i++) {
    auto& g = d.gpus[i];
    s += (i ? "," : "") + std::string("{\"name\":") + jsonQuote(g.name) + ",\"memoryBytes\":" + std::to_string(g.memoryBytes) +
         ",\"computeCapability\":\"" + std::to_string(g.ccMajor) + "." + std::to_string(g.ccMinor) + "\"}";
  }
  s += "],\"peer\":[";
  for (size_t i = 0; i < d.peer.size(); i++) {
    s += i ? ",[" : "[";
    for (size_t j = 0; j < d.peer[i].size(); j++) s += (j ? "," : "") + std::string(d.peer[i][j] ? "true" : "false");
    s += "]";
  }
  return s + "]}";
}

}  // namespace

[[noreturn]] void fl::failRun(const std::string& node, const std::string& message) {
  writeError(g_runId, node, message, true);
  _exit(4);
}

int main(int argc, char** argv) {
  DeviceReport dev;
#ifdef FUSIONLAB_CPU_ONLY
  dev.reason = "built without CUDA (FUSIONLAB_CPU_ONLY)";
#else
  if (argc > 1 && std::strcmp(argv[1], "--bench") == 0) return benchCuda(argc - 1, argv + 1);
  if (std::getenv("FUSIONLAB_WORKER_CPU")) dev.reason = "FUSIONLAB_WORKER_CPU is set";
  else dev = probeCuda();
#endif
  (void)argc; (void)argv;
  for (;;) {
    uint32_t hl;
    uint64_t pl;
    if (!readExact(&hl, 4) || !readExact(&pl, 8)) return 0;  // the agent closed the pipe
    if (hl > kMaxHeader || pl > kMaxPayload) { writeError("", "", "frame exceeds the worker's limits"); return 3; }
    std::string header(hl, '\0');
    std::vector<uint8_t> payload(pl);
    if (!readExact(header.data(), hl) || (pl && !readExact(payload.data(), pl))) return 0;
    std::string id;
    try {
      Json m = JsonReader(header).parse();
      const std::string& type = m.at("type").str();
      id = m.strOr("id", "");
      g_runId = id;
      if (type == "hello") { writeFrame(reportJson(dev)); continue; }
      if (type == "exit") return 0;
      if (type != "run") { writeError(id, "", "unknown request type '" + type + "'"); continue; }
      Program prog = parseProgram(m, pl);
      auto hook = [&](int k) { writeFrame("{\"type\":\"step\",\"i\":" + std::to_string(k) + "}"); };
      RunOutcome res;
#ifndef FUSIONLAB_CPU_ONLY
      if (dev.mode == "cuda") {
        if (prog.world > (int)dev.gpus.size())
          throw std::runtime_error("the run asks for " + std::to_string(prog.world) + " ranks; this host has " + std::to_string(dev.gpus.size()) + " GPUs");
        res = runOnCuda(prog, payload.data(), hook);
      } else
#endif
        res = runOnCpu(prog, payload.data(), hook);
      std::string h = "{\"type\":\"result\",\"id\":" + jsonQuote(id) + ",\"mode\":" + jsonQuote(dev.mode) + ",\"outputs\":[";
      std::vector<const std::vector<uint8_t>*> parts;
      uint64_t off = 0;
      bool first = true;
      for (size_t o = 0; o < res.outputs.size(); o++)
        for (int r = 0; r < prog.world; r++) {
          auto& b = res.outputs[o][r];
          h += (first ? "" : ",") + std::string("{\"slot\":") + std::to_string(prog.outputs[o]) + ",\"rank\":" + std::to_string(r) +
               ",\"offset\":" + std::to_string(off) + ",\"bytes\":" + std::to_string(b.size()) + "}";
          first = false;
          off += b.size();
          parts.push_back(&b);
        }
      h += "],\"trace\":[";
      for (size_t t = 0; t < res.trace.size(); t++) {
        auto& e = res.trace[t];
        h += (t ? "," : "") + std::string("{\"rank\":") + std::to_string(e.rank) + ",\"step\":" + std::to_string(e.step) +
             ",\"start_us\":" + jsonNum(e.startUs) + ",\"dur_us\":" + jsonNum(e.durUs);
        if (!e.note.empty()) h += ",\"note\":" + jsonQuote(e.note);
        h += "}";
      }
      h += "],\"timing\":" + std::string(dev.mode == "cuda" ? "\"cuda-event\"" : "\"host\"") + "}";
      writeFrame(h, parts);
    } catch (const StepError& e) {
#ifndef FUSIONLAB_CPU_ONLY
      // A CUDA error can poison the context: exit so the agent starts a clean worker.
      if (dev.mode == "cuda") { writeError(id, e.node, e.what(), true); return 4; }
#endif
      writeError(id, e.node, e.what());
    } catch (const std::exception& e) {
      writeError(id, "", e.what());
    }
  }
}
