// The result table of the registry benchmark: one row per scenario with the
// figures of both systems, printed as text and written as JSON
// (bench/results/latest.json; format in docs/benchmarks.md).
#pragma once

#include <string>
#include <vector>

#include "registry/scenario.h"

namespace muster::bench {

struct Row {
  std::string name;    // register, heartbeat, ...
  std::string unit;    // "ops/s", "ms", ...
  std::string params;  // what was run, in words
  Figures muster;
  Figures etcd;
};

// "AMD EPYC, 2 CPUs, 2445 MHz, 23 GiB RAM, Linux 6.1.0" from /proc.
std::string MachineDescription();

// The first three fields of /proc/loadavg: "0.12 0.30 0.25".
std::string LoadAverage();

// The table on stdout; ratio is musterd / etcd.
void PrintTable(const std::vector<Row>& rows);

// Writes {"machine", "quick", "load_before", "load_after", "scenarios":
// [...]} to `path` (directories created as needed); false when it cannot.
// The load averages tell whether something else ran on the machine.
bool WriteJson(const std::string& path, const std::string& machine, bool quick,
               const std::string& load_before, const std::string& load_after, const std::vector<Row>& rows);

}  // namespace muster::bench
