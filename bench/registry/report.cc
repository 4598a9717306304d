// Printing and writing the registry benchmark's table (see report.h).
#include "registry/report.h"

#include <sys/utsname.h>

#include <cmath>
#include <cstdio>
#include <optional>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

namespace muster::bench {
namespace {

std::string Format(double v) {
  char buf[64];
  if (v >= 1000 || (v >= 10 && v == std::floor(v))) {
    std::snprintf(buf, sizeof(buf), "%.0f", v);
  } else if (v >= 10) {
    std::snprintf(buf, sizeof(buf), "%.1f", v);
  } else {
    std::snprintf(buf, sizeof(buf), "%.3g", v);
  }
  return buf;
}

std::string Cell(const Figures& f) { return f.value ? Format(*f.value) : "not measured"; }

std::string Extras(const Figures& f) {
  std::string out;
  for (const auto& [key, value] : f.extra) {
    if (!out.empty()) out += " ";
    out += key + "=" + Format(value);
  }
  return out;
}

std::string Quote(const std::string& text) { return boost::json::serialize(boost::json::value(text)); }

// A JSON number: whole above 100, else up to 4 significant digits; null when empty.
std::string Number(std::optional<double> v) {
  if (!v || !std::isfinite(*v)) return "null";
  char buf[64];
  if (std::fabs(*v) >= 100) {
    std::snprintf(buf, sizeof(buf), "%.0f", *v);
  } else {
    std::snprintf(buf, sizeof(buf), "%.4g", *v);
  }
  return buf;
}

}  // namespace

std::string MachineDescription() {
  std::ifstream cpu("/proc/cpuinfo");
  std::string line, model, mhz;
  int cpus = 0;
  while (std::getline(cpu, line)) {
    auto value = [&] {
      size_t colon = line.find(':');
      return colon == std::string::npos ? std::string() : line.substr(colon + 2);
    };
    if (line.rfind("processor", 0) == 0) ++cpus;
    if (line.rfind("model name", 0) == 0 && model.empty()) model = value();
    if (line.rfind("cpu MHz", 0) == 0 && mhz.empty()) mhz = value();
  }
  std::ifstream mem("/proc/meminfo");
  double gib = 0;
  while (std::getline(mem, line)) {
    if (line.rfind("MemTotal:", 0) == 0) gib = std::stod(line.substr(9)) / (1024.0 * 1024.0);
  }
  utsname u{};
  uname(&u);
  std::ostringstream out;
  out << (model.empty() ? "unknown CPU" : model) << ", " << cpus << " CPUs";
  if (!mhz.empty()) out << ", " << mhz.substr(0, mhz.find('.')) << " MHz";
  out << ", " << static_cast<int>(gib + 0.5) << " GiB RAM, " << u.sysname << " " << u.release;
  return out.str();
}

void PrintTable(const std::vector<Row>& rows) {
  std::printf("\n%-13s %-7s %14s %14s %8s\n", "scenario", "unit", "musterd", "etcd", "ratio");
  for (const Row& r : rows) {
    std::string ratio = "-";
    if (r.muster.value && r.etcd.value && *r.etcd.value != 0) ratio = Format(*r.muster.value / *r.etcd.value);
    std::printf("%-13s %-7s %14s %14s %8s\n", r.name.c_str(), r.unit.c_str(), Cell(r.muster).c_str(),
                Cell(r.etcd).c_str(), ratio.c_str());
  }
  std::printf("(ratio = musterd / etcd: above 1 is better for musterd in ops/s, worse in ms)\n\n");
  for (const Row& r : rows) {
    std::printf("%s: %s\n", r.name.c_str(), r.params.c_str());
    std::printf("  musterd: %s%s%s\n", Extras(r.muster).c_str(), r.muster.note.empty() ? "" : "  ",
                r.muster.note.c_str());
    std::printf("  etcd:    %s%s%s\n", Extras(r.etcd).c_str(), r.etcd.note.empty() ? "" : "  ",
                r.etcd.note.c_str());
  }
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

bool WriteJson(const std::string& path, const std::string& machine, bool quick,
               const std::string& load_before, const std::string& load_after, const std::vector<Row>& rows) {
  std::error_code ec;
  const std::filesystem::path p(path);
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  std::ofstream out(path);
  if (!out) return false;
  // Written by hand rather than with boost::json::serialize, which prints
  // every double as 1.6745E4; one scenario a line, so that two runs diff well.
  out << "{\"machine\": " << Quote(machine) << ",\n \"quick\": " << (quick ? "true" : "false")
      << ",\n \"load_before\": " << Quote(load_before) << ", \"load_after\": " << Quote(load_after)
      << ",\n \"scenarios\": [";
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    out << (i == 0 ? "\n  " : ",\n  ") << "{\"name\": " << Quote(r.name) << ", \"unit\": " << Quote(r.unit)
        << ", \"muster\": " << Number(r.muster.value) << ", \"etcd\": " << Number(r.etcd.value)
        << ", \"ratio\": "
        << Number(r.muster.value && r.etcd.value && *r.etcd.value != 0
                      ? std::optional<double>(*r.muster.value / *r.etcd.value)
                      : std::nullopt);
    for (const auto& [key, value] : r.muster.extra) out << ", " << Quote("muster_" + key) << ": " << Number(value);
    for (const auto& [key, value] : r.etcd.extra) out << ", " << Quote("etcd_" + key) << ": " << Number(value);
    if (!r.muster.note.empty()) out << ", \"muster_note\": " << Quote(r.muster.note);
    if (!r.etcd.note.empty()) out << ", \"etcd_note\": " << Quote(r.etcd.note);
    out << ", \"params\": " << Quote(r.params) << "}";
  }
  out << "\n]}\n";
  return static_cast<bool>(out);
}

}  // namespace muster::bench
