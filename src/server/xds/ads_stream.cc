#include "server/xds/ads_stream.h"

#include <spdlog/spdlog.h>

#include <string_view>
#include <vector>

#include "core/strings.h"
#include "core/utf8.h"

namespace muster::xds {

namespace {

// The hub's key for the service of a target: "ns/service".
std::string ServiceKey(const Target& target) { return StrCat(target.ns, "/", target.service); }

// Assignments kept at most, by resource name; past it the cache starts over.
constexpr size_t kMaxCachedAssignments = 4096;

}  // namespace

// --- Pusher ------------------------------------------------------------------

Pusher::Pusher() : thread_([this] { Loop(); }) {}

Pusher::~Pusher() { Stop(); }

void Pusher::Enqueue(std::weak_ptr<AdsStream> stream, std::string key) {
  MutexLock lock(mu_);
  if (stopping_) return;
  queue_.emplace_back(std::move(stream), std::move(key));
  wake_.NotifyOne();
}

void Pusher::Stop() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
    queue_.clear();
    wake_.NotifyAll();
  }
  if (!thread_.joinable()) return;
  if (thread_.get_id() == std::this_thread::get_id()) {
    // Not expected: nothing that holds the pusher lets go of it on the
    // pusher's own thread (streams never unsubscribe there). Joining
    // itself would throw.
    thread_.detach();
  } else {
    thread_.join();
  }
}

void Pusher::Loop() {
  while (true) {
    std::pair<std::weak_ptr<AdsStream>, std::string> next;
    {
      MutexLock lock(mu_);
      while (!stopping_ && queue_.empty()) wake_.Wait(mu_);
      if (stopping_) return;
      next = std::move(queue_.front());
      queue_.pop_front();
    }
    if (std::shared_ptr<AdsStream> stream = next.first.lock()) stream->ServiceChanged(next.second);
  }
}

// --- XdsShared -----------------------------------------------------------------

std::shared_ptr<const google::protobuf::Any> XdsShared::Endpoints(const std::string& name,
                                                                  const Target& target) {
  const uint64_t now = catalog.RevisionsOf(target.ns, target.service).service;
  {
    MutexLock lock(cache_mu_);
    if (auto it = cache_.find(name); it != cache_.end() && it->second.service_revision == now) {
      return it->second.resource;
    }
  }
  ListFilter filter;
  filter.version = target.version;
  filter.healthy_only = true;
  CatalogView::ListResult list = catalog.List(target.ns, target.service, filter);
  EndpointsBuilt built = EndpointsResource(name, list.instances, options.zone_key);
  if (built.skipped_hostnames > 0) {
    spdlog::debug("xDS {}: {} instance(s) left out: their address is a host name, and gRPC "
                  "takes IP addresses only", name, built.skipped_hostnames);
  }
  auto resource = std::make_shared<const google::protobuf::Any>(std::move(built.resource));
  MutexLock lock(cache_mu_);
  if (cache_.size() >= kMaxCachedAssignments) cache_.clear();
  Built& entry = cache_[name];
  if (entry.resource == nullptr || entry.service_revision <= list.service_revision) {
    entry = Built{list.service_revision, resource};
  }
  return resource;
}

// --- AdsStream -----------------------------------------------------------------

AdsStream::AdsStream(XdsShared& shared, std::string peer) : shared_(shared), peer_(std::move(peer)) {}

AdsStream* AdsStream::Open(XdsShared& shared, std::string peer, const grpc::Status* refuse) {
  auto stream = std::make_shared<AdsStream>(shared, std::move(peer));
  {
    MutexLock lock(stream->mu_);
    stream->self_ = stream;
    if (refuse != nullptr) stream->finished_ = true;
  }
  if (refuse == nullptr) {
    stream->counted_ = true;
    shared.counters.streams.fetch_add(1, std::memory_order_relaxed);
    shared.counters.streams_total.fetch_add(1, std::memory_order_relaxed);
  } else {
    shared.counters.streams_refused.fetch_add(1, std::memory_order_relaxed);
  }
  if (refuse != nullptr) {
    stream->Finish(*refuse);
  } else {
    stream->StartRead(&stream->request_);
  }
  return stream.get();
}

void AdsStream::OnReadDone(bool ok) {
  After after;
  bool read_again = false;  // the next request, unless the stream is ending
  {
    MutexLock lock(mu_);
    if (!ok) {
      ended_ = true;
    } else {
      shared_.counters.requests.fetch_add(1, std::memory_order_relaxed);
      Handle(request_);
      after.write = NextResponseLocked();
    }
    after.finish = FinishDueLocked();
    if (after.finish) after.status = end_status_;
    read_again = !ended_;
  }
  Run(after);
  if (read_again) StartRead(&request_);
}

void AdsStream::Handle(const Request& request) {
  if (node_.empty() && request.has_node()) {
    node_ = request.node().id();
    spdlog::debug("xDS stream from {} (node {:?})", peer_, node_);
  }
  const std::optional<ResourceType> type = TypeOfUrl(request.type_url());
  if (!type) {
    spdlog::debug("xDS stream from {}: type {:?} is not served; ignored", peer_,
                  Utf8Prefix(request.type_url(), 200));
    return;
  }
  TypeState& state = types_[static_cast<size_t>(*type)];
  if (!request.response_nonce().empty()) {
    if (request.response_nonce() != state.nonce) return;  // stale: a newer response is on its way
    if (request.has_error_detail()) {
      shared_.counters.nacks.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("xDS NACK from {} (node {:?}) of {} version {}: {}", peer_, node_,
                   ShortName(*type), state.version,
                   Utf8Prefix(request.error_detail().message(), 1000));
    } else {
      shared_.counters.acks.fetch_add(1, std::memory_order_relaxed);
    }
  }
  if (static_cast<size_t>(request.resource_names_size()) > shared_.options.max_names_per_stream) {
    ended_ = true;
    end_status_ = grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                               StrCat("a stream may follow at most ", shared_.options.max_names_per_stream,
                                      " resources of a type; this request names ",
                                      request.resource_names_size()));
    spdlog::warn("xDS stream from {}: {}", peer_, end_status_.error_message());
    return;
  }
  std::set<std::string> names(request.resource_names().begin(), request.resource_names().end());
  if (names != state.names || request.response_nonce().empty()) {
    Follow(*type, std::move(names));
  }
}

void AdsStream::Follow(ResourceType type, std::set<std::string> names) {
  TypeState& state = types_[static_cast<size_t>(type)];
  state.names = std::move(names);
  state.full = true;
  if (type == ResourceType::kEndpoints) WatchEndpoints(state.names);
}

void AdsStream::WatchEndpoints(const std::set<std::string>& names) {
  // The services the names stand for now.
  absl::flat_hash_map<std::string, std::set<std::string>> wanted;
  for (const std::string& name : names) {
    absl::StatusOr<Target> target = ParseTarget(name, shared_.options.limits);
    if (target.ok()) wanted[ServiceKey(*target)].insert(name);
  }
  for (auto it = watched_.begin(); it != watched_.end();) {
    if (!wanted.contains(it->first)) {
      shared_.catalog.hub().Unsubscribe(it->second.subscription);
      watched_.erase(it++);
    } else {
      ++it;
    }
  }
  for (auto& [key, key_names] : wanted) {
    Watched& w = watched_[key];
    w.names = std::move(key_names);
    if (w.subscription != 0) continue;
    absl::StatusOr<Target> target = ParseTarget(*w.names.begin(), shared_.options.limits);
    WatchFilter filter;
    filter.ns = target->ns;
    filter.services = {target->service};
    w.subscription = shared_.catalog.hub().Subscribe(
        filter, [weak = weak_from_this(), key = key, pusher = shared_.pusher]() {
          pusher->Enqueue(weak, key);
        });
  }
}

void AdsStream::ServiceChanged(const std::string& key) {
  After after;
  {
    MutexLock lock(mu_);
    if (finished_) return;
    auto it = watched_.find(key);
    if (it == watched_.end()) return;
    dirty_.insert(it->second.names.begin(), it->second.names.end());
    after.write = NextResponseLocked();
  }
  Run(after);
}

bool AdsStream::NextResponseLocked() {
  if (writing_ || ended_ || finished_) return false;
  TypeState* due = nullptr;
  ResourceType type = ResourceType::kListener;
  for (size_t i = 0; i < kResourceTypes; ++i) {
    if (types_[i].full) {
      due = &types_[i];
      type = static_cast<ResourceType>(i);
      break;
    }
  }
  if (due == nullptr && !dirty_.empty()) {
    type = ResourceType::kEndpoints;
    due = &types_[static_cast<size_t>(type)];
  }
  if (due == nullptr) return false;

  // Full: every followed name; else the EDS names whose service changed.
  std::set<std::string> names;
  if (due->full) {
    names = due->names;
  } else {
    for (const std::string& name : dirty_) {
      if (due->names.contains(name)) names.insert(name);
    }
  }
  const bool full = due->full;
  due->full = false;
  if (type == ResourceType::kEndpoints) dirty_.clear();
  if (!full && names.empty()) return false;  // none of the changed names is followed now

  response_.Clear();
  response_.set_type_url(std::string(TypeUrl(type)));
  for (const std::string& name : names) {
    absl::StatusOr<Target> target = ParseTarget(name, shared_.options.limits);
    if (!target.ok()) {
      // Left out: the client treats it as a resource that does not exist.
      if (refused_.size() < 64 && refused_.insert(name).second) {
        spdlog::warn("xDS stream from {} (node {:?}): {}", peer_, node_, MessageOf(target.status()));
      }
      continue;
    }
    switch (type) {
      case ResourceType::kListener: *response_.add_resources() = ListenerResource(name); break;
      case ResourceType::kRoute: *response_.add_resources() = RouteResource(name); break;
      case ResourceType::kCluster: *response_.add_resources() = ClusterResource(name); break;
      case ResourceType::kEndpoints:
        *response_.add_resources() = *shared_.Endpoints(name, *target);
        break;
    }
  }
  due->version += 1;
  due->nonce = StrCat(++nonce_);
  response_.set_version_info(StrCat(due->version));
  response_.set_nonce(due->nonce);
  writing_ = true;
  shared_.counters.responses.fetch_add(1, std::memory_order_relaxed);
  return true;
}

bool AdsStream::FinishDueLocked() {
  if (!ended_ || writing_ || finished_) return false;
  finished_ = true;
  return true;
}

void AdsStream::Run(const After& after) {
  if (after.write) StartWrite(&response_);
  if (after.finish) Finish(after.status);
}

void AdsStream::OnWriteDone(bool ok) {
  After after;
  {
    MutexLock lock(mu_);
    writing_ = false;
    if (!ok) ended_ = true;
    after.write = NextResponseLocked();
    after.finish = FinishDueLocked();
    if (after.finish) after.status = end_status_;
  }
  Run(after);
}

void AdsStream::OnCancel() {
  After after;
  {
    MutexLock lock(mu_);
    ended_ = true;
    end_status_ = grpc::Status::CANCELLED;
    after.finish = FinishDueLocked();
    after.status = end_status_;
  }
  Run(after);
}

void AdsStream::OnDone() {
  std::shared_ptr<AdsStream> self;
  {
    MutexLock lock(mu_);
    for (auto& [key, w] : watched_) shared_.catalog.hub().Unsubscribe(w.subscription);
    watched_.clear();
    finished_ = true;
    self = std::move(self_);
    if (counted_) spdlog::debug("xDS stream from {} (node {:?}) ended", peer_, node_);
  }
  if (counted_) shared_.counters.streams.fetch_sub(1, std::memory_order_relaxed);
  // `self` goes last: the stream is freed here unless the Pusher holds it.
}

}  // namespace muster::xds
