// Uses the installed SDK the way an application would: only <muster/muster.h>.
#include <cstdio>
#include <memory>
#include <vector>

#include <muster/muster.h>

int main() {
  std::unique_ptr<muster::Registry> registry = muster::NewMemoryRegistry();
  muster::Instance in;
  in.service = "orders";
  in.id = "orders-1";
  in.address = "127.0.0.1:9000";
  if (!registry->Register(in, muster::CallOptions{}).ok()) return 1;
  auto list = registry->ListServices(muster::ServiceQuery{"default", "orders", ""}, muster::CallOptions{});
  if (!list.ok() || list->instances.size() != 1) return 2;
  auto balancer = muster::NewBalancer("round_robin");
  if (!balancer.ok()) return 3;
  (*balancer)->Update(std::make_shared<const std::vector<muster::Instance>>(list->instances));
  auto picked = (*balancer)->Pick({});
  if (!picked.ok() || picked->instance().id != "orders-1") return 4;
  std::puts("consumer: ok");
  return 0;
}
