// The request bodies and stored values both systems get (see scenario.h).
#include "registry/scenario.h"

namespace muster::bench {

namespace {
std::string Address(int k) { return "127.0.0.1:" + std::to_string(10000 + k % 50000); }
}  // namespace

std::string InstanceBody(int k, int ttl_seconds) {
  return "{\"address\":\"" + Address(k) + "\",\"ttl_seconds\":" + std::to_string(ttl_seconds) + "}";
}

std::string EtcdValue(const std::string& service, int k, int ttl_seconds) {
  const std::string id = "i-" + std::to_string(k);
  return "{\"id\":\"" + id + "\",\"service\":\"" + service +
         "\",\"namespace\":\"default\",\"version\":\"\",\"address\":\"" + Address(k) +
         "\",\"status\":\"enabled\",\"weight\":100,\"metadata\":{},\"ttl_seconds\":" +
         std::to_string(ttl_seconds) + ",\"health\":\"passing\"}";
}

}  // namespace muster::bench
