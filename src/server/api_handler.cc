#include "server/api_handler.h"

#include <charconv>
#include <limits>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_join.h"
#include "core/duration.h"
#include "core/json_codec.h"
#include "core/registration.h"
#include "core/strings.h"
#include "core/utf8.h"
#include "core/validation.h"
#include "core/wire/errors.h"
#include "core/wire/paths.h"
#include "server/consul/consul_api.h"
#include "server/outbound/http_call.h"
#include "server/xds/xds_server.h"

// GCC 12 takes Asio's coroutine frames, allocated by the frame's own
// operator new and freed by its matching operator delete, for a mismatched
// pair once enough of Handle is inlined (a false positive of
// -Wmismatched-new-delete with coroutines).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace muster {
namespace json = boost::json;
namespace {

using TimerClock = asio::steady_timer::clock_type;

Response MethodNotAllowed(std::string_view allow) {
  Response res = ErrorResponse(wire::kMethodNotAllowed, StrCat("this path allows only ", allow));
  res.set(http::field::allow, allow);
  return res;
}

Response BadArgument(std::string_view message) {
  return ErrorResponse(absl::InvalidArgumentError(std::string(message)));
}

std::optional<uint64_t> ParseUnsigned(std::string_view text) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

}  // namespace

ApiHandler::ApiHandler(const ServerConfig& config, Catalog& catalog)
    : config_(config), catalog_(catalog), lists_(config.list_cache_mb << 20),
      streams_(config, catalog.hub()) {
  if (config.consul_api) consul_ = std::make_unique<ConsulApi>(config, catalog, *this);
}

ApiHandler::~ApiHandler() = default;

void ApiHandler::SetListenAddress(const std::string& address) {
  if (consul_ != nullptr) consul_->SetListenAddress(address);
}

void ApiHandler::BeginShutdown() {
  stopping_ = true;
  streams_.BeginShutdown();
  catalog_.hub().NotifyAll();
}

awaitable<ApiHandler::Reply> ApiHandler::Handle(Request& req) {
  std::string_view target = req.target();
  std::optional<Target> t = ParseTarget(target);
  if (!t) co_return BadArgument("malformed percent-escape in the request target");
  // HEAD is answered as GET is, and the session sends the head alone.
  const http::verb method = req.method() == http::verb::head ? http::verb::get : req.method();
  const auto& seg = t->segments;

  std::string_view path = target.substr(0, target.find('?'));
  if (path == config_.geerpc_path) {
    if (method != http::verb::get && method != http::verb::post) co_return MethodNotAllowed("GET, HEAD, POST");
    co_return co_await GeeRpc(req);
  }
  if (seg.size() == 1 && seg[0] == "healthz") {
    if (method != http::verb::get) co_return MethodNotAllowed("GET, HEAD");
    co_return Healthz();
  }
  if (consul_ != nullptr && !seg.empty() && seg[0] == "v1") {
    co_return co_await consul_->Handle(req, *t, method);
  }
  if (seg.size() < 3 || seg[0] != "api" || seg[1] != "v1") {
    co_return ErrorResponse(absl::NotFoundError(StrCat("no such path: ", Utf8Prefix(path, 200))));
  }

  std::string ns = t->Param("namespace").value_or(std::string(kDefaultNamespace));
  if (auto s = ValidateName("namespace", ns, config_.limits); !s.ok()) co_return ErrorResponse(s);

  if (seg.size() == 3 && seg[2] == "watch") {
    if (method != http::verb::get) co_return MethodNotAllowed("GET, HEAD");
    Reply reply = Watch(req, *t, ns);
    if (req.method() == http::verb::head && std::holds_alternative<WatchStream>(reply)) {
      // The head a stream would start with, and no stream.
      Response res{http::status::ok, 11};
      res.set(http::field::content_type, "text/event-stream");
      res.set(http::field::cache_control, "no-cache");
      res.set("X-Muster-Index", StrCat(catalog_.hub().last_revision()));
      co_return res;
    }
    co_return reply;
  }
  if (seg[2] == "services") {
    if (seg.size() == 3) {
      if (method != http::verb::get) co_return MethodNotAllowed("GET, HEAD");
      co_return Services(ns);
    }
    if (seg.size() >= 5 && seg[4] == "instances") {
      if (auto s = ValidateName("service", seg[3], config_.limits); !s.ok()) co_return ErrorResponse(s);
      if (seg.size() == 5) {
        if (method != http::verb::get) co_return MethodNotAllowed("GET, HEAD");
        co_return co_await List(*t, ns);
      }
      if (auto s = ValidateName("id", seg[5], config_.limits); !s.ok()) co_return ErrorResponse(s);
      if (seg.size() == 6) {
        if (method == http::verb::put) co_return co_await Register(req, *t, ns);
        if (method == http::verb::delete_) co_return co_await Deregister(*t, ns);
        co_return MethodNotAllowed("PUT, DELETE");
      }
      if (seg.size() == 7 && seg[6] == "checks") {
        if (method != http::verb::get) co_return MethodNotAllowed("GET, HEAD");
        co_return Checks(*t, ns);
      }
      if (seg.size() == 8 && seg[6] == "checks") {
        if (method != http::verb::put && method != http::verb::post) co_return MethodNotAllowed("PUT, POST");
        if (auto s = ValidateCheckId(seg[7], config_.limits); !s.ok()) co_return ErrorResponse(s);
        co_return co_await Report(req, *t, ns);
      }
      if (seg.size() == 7 && seg[6] == "heartbeat") {
        if (method != http::verb::put && method != http::verb::post) co_return MethodNotAllowed("PUT, POST");
        co_return co_await Heartbeat(*t, ns);
      }
    }
  }
  co_return ErrorResponse(absl::NotFoundError(StrCat("no such path: ", Utf8Prefix(path, 200))));
}

awaitable<Response> ApiHandler::Register(const Request& req, const Target& t, const std::string& ns) {
  auto instance = ParseRegistration(req.body(), ns, t.segments[3], t.segments[5], config_.limits);
  if (!instance.ok()) co_return ErrorResponse(instance.status());
  if (auto s = AllowScriptChecks(req, *instance); !s.ok()) co_return ErrorResponse(s);
  auto result = co_await AwaitCallback<absl::StatusOr<Catalog::WriteResult>>(
      [&](auto done) { catalog_.Register(*std::move(instance), std::move(done)); });
  if (!result.ok()) co_return ErrorResponse(result.status());
  co_return JsonResponse(result->created ? http::status::created : http::status::ok,
                         InstanceToJson(*result->instance));
}

absl::Status ApiHandler::AllowScriptChecks(const Request& req, const Instance& instance) const {
  const bool script = std::any_of(instance.checks.begin(), instance.checks.end(),
                                  [](const Check& c) { return c.type == CheckType::kScript; });
  if (!script) return absl::OkStatus();
  if (!config_.enable_script_checks) {
    return absl::PermissionDeniedError(
        "script checks are disabled on this registry (musterd --enable-script-checks)");
  }
  auto token = req.find("X-Muster-Token");
  std::string_view given;
  if (token != req.end()) given = std::string_view(token->value().data(), token->value().size());
  // Compared in constant time, so the answer time does not leak the token.
  const std::string& want = config_.script_checks_token;
  unsigned char diff = given.size() == want.size() ? 0 : 1;
  for (size_t i = 0; i < want.size(); ++i) {
    diff |= static_cast<unsigned char>(want[i] ^ (i < given.size() ? given[i] : 0));
  }
  if (diff != 0) {
    return absl::PermissionDeniedError(
        "a script check needs the registry's script-checks token in the X-Muster-Token header");
  }
  return absl::OkStatus();
}

Response ApiHandler::Checks(const Target& t, const std::string& ns) {
  InstanceKey key{ns, t.segments[3], t.segments[5]};
  std::shared_ptr<const Instance> in = catalog_.Get(key);
  if (in == nullptr) {
    return ErrorResponse(NotRegisteredError(key));
  }
  std::vector<HealthChecker::LiveCheck> live;
  if (checker_ != nullptr) live = checker_->Live(key);
  json::array checks;
  for (const Check& c : in->checks) {
    json::object o = CheckToJson(c);
    for (const HealthChecker::LiveCheck& l : live) {
      if (l.id != c.id || !l.last) continue;
      o["live"] = json::object{{"status", ToString(l.status)},
                               {"last_result", ToString(l.last->status)},
                               {"last_output", l.last->output},
                               {"last_checked", FormatTimestamp(l.last_at)},
                               {"streak", l.streak}};
    }
    checks.push_back(std::move(o));
  }
  return JsonResponse(http::status::ok, json::object{{"revision", catalog_.revision()},
                                                     {"id", in->id},
                                                     {"service", in->service},
                                                     {"health", ToString(in->health)},
                                                     {"checks", std::move(checks)}});
}

awaitable<Response> ApiHandler::Report(const Request& req, const Target& t, const std::string& ns) {
  auto report = ParseCheckReport(req.body(), config_.limits);
  if (!report.ok()) co_return ErrorResponse(report.status());
  const InstanceKey key{ns, t.segments[3], t.segments[5]};
  const std::string& check_id = t.segments[7];
  // A report another node forwarded is not forwarded again.
  const bool may_forward = req.find(kForwardedHeader) == req.end();
  absl::Status s =
      co_await ReportCheck(key, check_id, report->status, std::move(report->output), may_forward);
  if (!s.ok()) co_return ErrorResponse(s);
  std::shared_ptr<const Instance> in = catalog_.Get(key);
  const Check* c = in != nullptr ? in->FindCheck(check_id) : nullptr;
  if (c == nullptr) co_return ErrorResponse(NotRegisteredError(key));  // gone meanwhile
  co_return JsonResponse(http::status::ok, json::object{{"revision", catalog_.revision()},
                                                        {"id", key.id},
                                                        {"health", ToString(in->health)},
                                                        {"check", CheckToJson(*c)}});
}

awaitable<absl::Status> ApiHandler::ReportCheck(const InstanceKey& key, const std::string& check_id,
                                                Health status, std::string output,
                                                bool may_forward) {
  std::shared_ptr<const Instance> in = catalog_.Get(key);
  if (in == nullptr) co_return NotRegisteredError(key);
  const Check* c = in->FindCheck(check_id);
  if (c == nullptr) {
    co_return absl::NotFoundError(
        StrCat("instance ", key.service, "/", key.id, " has no check \"", check_id, "\""));
  }
  if (!c->IsReported()) {
    co_return absl::FailedPreconditionError(StrCat(
        "check \"", check_id, "\" is ", c->IsLease() ? "the lease (send heartbeats)" : "run by musterd",
        "; only a ttl check with a ttl takes reports"));
  }
  if (checker_ == nullptr) co_return absl::UnavailableError("this node runs no checks");
  // Consul's ?note= comes percent-decoded from the query: whatever bytes it
  // holds, the stored output (and every answer that shows it) is UTF-8.
  if (!IsValidUtf8(output)) output = ToValidUtf8(output);
  std::string copy = may_forward ? output : std::string();  // for the leader, should it come to that
  absl::Status s = co_await AwaitCallback<absl::Status>([&](auto done) {
    checker_->Report(key, check_id, status, std::move(output), std::move(done));
  });
  if (absl::IsNotFound(s)) {
    // In the catalog but not yet followed by the checker (cluster mode: a
    // registration the leader has not applied yet).
    co_return absl::UnavailableError(StrCat("check \"", check_id, "\" is not followed yet; try again"));
  }
  if (absl::IsUnavailable(s) && catalog_.write_status().election) {
    // Cluster mode: the leader keeps the timers of reported checks.
    const std::string leader = catalog_.write_status().election->leader;
    if (leader.empty()) co_return absl::UnavailableError("no node leads the checks right now; try again");
    if (!may_forward) co_return absl::UnavailableError(StrCat("the checks run on the leader, ", leader));
    co_return co_await ForwardReport(leader, key, check_id, status, std::move(copy));
  }
  co_return s;
}

awaitable<absl::Status> ApiHandler::ForwardReport(const std::string& leader, const InstanceKey& key,
                                                  const std::string& check_id, Health status,
                                                  std::string output) {
  auto url = outbound::ParseHttpUrl(StrCat("http://", leader, wire::CheckReportTarget(key, check_id)));
  if (!url.ok()) co_return absl::UnavailableError(StrCat("leader ", leader, ": ", MessageOf(url.status())));
  auto call = outbound::HttpCall::Make(co_await asio::this_coro::executor, *url, nullptr);
  outbound::Request request = outbound::NewRequest(*url, "PUT", "musterd");
  request.set(kForwardedHeader, "1");
  request.set(http::field::content_type, "application/json");
  request.body() = json::serialize(json::object{{"status", ToString(status)}, {"output", output}});
  outbound::ExchangeOptions options;
  options.timeout = std::chrono::seconds(5);
  options.body_bytes = [](unsigned) { return size_t{4096}; };
  auto answer = co_await call->Run(std::move(request), std::move(options));
  if (!answer.ok()) {
    co_return absl::UnavailableError(
        StrCat("cannot reach the leader ", leader, ": ", MessageOf(answer.status())));
  }
  if (answer->status == 200) co_return absl::OkStatus();
  co_return wire::DecodeError(static_cast<int>(answer->status), answer->body);
}

awaitable<Response> ApiHandler::Deregister(const Target& t, const std::string& ns) {
  InstanceKey key{ns, t.segments[3], t.segments[5]};
  auto result = co_await AwaitCallback<absl::StatusOr<Catalog::WriteResult>>(
      [&](auto done) { catalog_.Deregister(std::move(key), std::move(done)); });
  if (!result.ok()) co_return ErrorResponse(result.status());
  co_return JsonResponse(http::status::ok, json::object{{"revision", result->revision}});
}

awaitable<absl::StatusOr<uint32_t>> ApiHandler::RenewLease(const InstanceKey& key) {
  std::optional<absl::StatusOr<uint32_t>> ttl = catalog_.TryHeartbeat(key);
  if (!ttl) {
    ttl = co_await AwaitCallback<absl::StatusOr<uint32_t>>(
        [&](auto done) { catalog_.Heartbeat(key, std::move(done)); });
  }
  co_return *std::move(ttl);
}

awaitable<Response> ApiHandler::Heartbeat(const Target& t, const std::string& ns) {
  const InstanceKey key{ns, t.segments[3], t.segments[5]};
  absl::StatusOr<uint32_t> ttl = co_await RenewLease(key);
  if (!ttl.ok()) co_return ErrorResponse(ttl.status());
  co_return JsonResponse(http::status::ok, json::object{{"id", t.segments[5]}, {"ttl_seconds", *ttl}});
}

awaitable<void> ApiHandler::WaitForChange(const std::string& ns, const std::string& service,
                                          uint64_t index, TimerClock::time_point deadline) {
  Wakeup wakeup(co_await asio::this_coro::executor);
  WatchFilter filter{ns, {}};
  if (!service.empty()) filter.services.push_back(service);
  WatchSubscription subscription(catalog_.hub(), std::move(filter), wakeup.Notifier());
  // Counted once subscribed: a change after the count shows it wakes this
  // query (tests wait on the count instead of sleeping).
  ++blocking_queries_;
  absl::Cleanup uncount = [this] { --blocking_queries_; };
  for (;;) {
    wakeup.Arm(deadline);
    const uint64_t now =
        service.empty() ? catalog_.revision() : catalog_.ServiceRevision(ns, service);
    if (stopping_ || now > index || TimerClock::now() >= deadline) break;
    co_await wakeup.Wait();
  }
}

awaitable<Response> ApiHandler::List(const Target& t, const std::string& ns) {
  const std::string& service = t.segments[3];
  ListFilter filter;
  if (auto v = t.Param("version")) {
    if (!v->empty()) {
      if (auto s = ValidateName("version", *v, config_.limits); !s.ok()) co_return ErrorResponse(s);
    }
    filter.version = *v;
  }
  if (auto h = t.Param("healthy")) {
    if (*h == "true" || h->empty()) {
      filter.healthy_only = true;
    } else if (*h != "false") {
      co_return BadArgument("healthy must be true or false");
    }
  }
  for (const auto& [key, value] : t.query) {
    if (key.starts_with("meta.")) filter.metadata.emplace_back(key.substr(5), value);
  }
  filter.tags = t.All("tag");
  if (filter.tags.size() > config_.limits.max_tags) {
    co_return BadArgument(StrCat("more than ", config_.limits.max_tags, " tag filters"));
  }
  for (const std::string& tag : filter.tags) {
    if (auto s = ValidateTag(tag, config_.limits); !s.ok()) co_return ErrorResponse(s);
  }
  if (auto index_text = t.Param("index")) {
    auto index = ParseUnsigned(*index_text);
    if (!index) co_return BadArgument("index must be a non-negative integer");
    std::chrono::milliseconds wait = config_.default_wait;
    if (auto w = t.Param("wait")) {
      auto parsed = ParseDuration(*w);
      if (!parsed.ok()) co_return BadArgument(StrCat("wait: ", MessageOf(parsed.status())));
      if (*parsed > config_.max_wait) {
        co_return BadArgument(
            StrCat("wait is over the maximum of ", FormatDuration(config_.max_wait)));
      }
      wait = *parsed;
    }
    co_await WaitForChange(ns, service, *index, TimerClock::now() + wait);
  } else if (auto w = t.Param("wait")) {
    co_return BadArgument("wait needs index");
  }
  // The instances' JSON is made once per change of the service and shared
  // by every list until the next (list_cache.h).
  std::string key = ListCache::KeyOf(ns, service, filter);
  const Catalog::Revisions at = catalog_.RevisionsOf(ns, service);
  uint64_t revision = at.registry;
  std::shared_ptr<const std::string> instances = lists_.Find(key, at.service);
  if (instances == nullptr) {
    Catalog::ListResult list = catalog_.List(ns, service, filter);
    json::array array;
    array.reserve(list.instances.size());
    for (const auto& in : list.instances) array.push_back(InstanceToJson(*in));
    instances = std::make_shared<const std::string>(json::serialize(array));
    revision = list.revision;
    lists_.Store(std::move(key), list.service_revision, instances);
  }
  // What JsonResponse would make of {"revision", "instances"}, with the
  // cached JSON sent as it is, not copied into the body.
  Response res{http::status::ok, 11};
  res.set(http::field::content_type, "application/json");
  res.body() = StrCat("{\"revision\":", revision, ",\"instances\":");
  res.shared = std::move(instances);
  res.tail = "}\n";
  res.set("X-Muster-Index", StrCat(revision));
  co_return res;
}

Response ApiHandler::Services(const std::string& ns) {
  uint64_t revision = 0;
  json::array services;
  for (const ServiceSummary& s : catalog_.Services(ns, &revision)) {
    services.push_back(json::object{{"name", s.name}, {"instances", s.instances}, {"healthy", s.healthy}});
  }
  Response res = JsonResponse(http::status::ok,
                              json::object{{"revision", revision}, {"services", std::move(services)}});
  res.set("X-Muster-Index", StrCat(revision));
  return res;
}

Response ApiHandler::Healthz() {
  if (stopping_) {
    return ErrorResponse(absl::UnavailableError("musterd is shutting down"));
  }
  const WritePathStatus writes = catalog_.write_status();
  json::object health{{"status", "ok"}, {"revision", catalog_.revision()}, {"store", writes.store}};
  if (writes.self_preserving) health["self_preservation"] = *writes.self_preserving;
  if (writes.store_write_failing) health["store_write_failing"] = *writes.store_write_failing;
  // Cluster mode: whether this node's view follows etcd right now; while it
  // does not, lists may be stale (the node still answers from its view).
  if (writes.following) health["following"] = *writes.following;
  if (writes.election) {
    health["leader"] = writes.election->leading;
    health["leader_address"] = writes.election->leader;
    if (writes.election->leading) health["term"] = writes.election->term;
  }
  if (checker_ != nullptr) health["active_checks"] = checker_->check_count();
  if (connections_ != nullptr) {
    const ConnectionTable::Stats c = connections_->stats();
    health["connections"] = json::object{{"open", c.open}, {"max", c.max}, {"shed", c.shed}, {"refused", c.refused}};
  }
  const WatchStreams::Stats watches = streams_.stats();
  health["watches"] = json::object{{"open", watches.open}, {"backlogged", watches.backlogged}};
  health["blocking_queries"] = blocking_queries_.load();
  const WatchHub::HistoryStats history = catalog_.hub().history_stats();
  health["history"] = json::object{{"events", history.events},
                                   {"bytes", history.bytes},
                                   {"oldest_revision", history.oldest_revision}};
  if (webhooks_ != nullptr) {
    const WebhookNotifier::Stats sent = webhooks_->stats();
    health["webhooks"] = json::object{{"delivered", sent.delivered}, {"failed", sent.failed},
                                      {"dropped", sent.dropped},     {"retries", sent.retries},
                                      {"queued", sent.queued}};
  }
  if (xds_ != nullptr) {
    const xds::XdsStats x = xds_->stats();
    health["xds"] = json::object{{"address", xds_->address()}, {"streams", x.streams},
                                 {"streams_total", x.streams_total}, {"refused", x.streams_refused},
                                 {"responses", x.responses}, {"acks", x.acks}, {"nacks", x.nacks}};
  }
  return JsonResponse(http::status::ok, std::move(health));
}

ApiHandler::Reply ApiHandler::Watch(const Request& req, const Target& t, const std::string& ns) {
  WatchStream watch{WatchFilter{ns, t.All("service")}, std::nullopt};
  for (const std::string& s : watch.filter.services) {
    if (auto st = ValidateName("service", s, config_.limits); !st.ok()) return ErrorResponse(st);
  }
  if (auto f = t.Param("from")) {
    watch.from = ParseUnsigned(*f);
    if (!watch.from || *watch.from == 0) return BadArgument("from must be a revision of at least 1");
  } else if (auto last = req.find("Last-Event-ID"); last != req.end()) {
    auto id = ParseUnsigned(last->value());
    if (!id || *id == std::numeric_limits<uint64_t>::max()) {
      return BadArgument("Last-Event-ID must be a revision");
    }
    watch.from = *id + 1;
  }
  // Checked again by the stream's first read, should the history move on
  // in between (it then ends with a compacted event).
  const WatchHub& hub = catalog_.hub();
  if (watch.from && *watch.from < hub.oldest_retained()) {
    return ErrorResponse(
        wire::kGone,
        StrCat("revision ", *watch.from, " is older than the retained history (oldest ",
               hub.oldest_retained(), "); list again and watch from its revision + 1"));
  }
  return watch;
}

awaitable<void> ApiHandler::Stream(const WatchStream& watch, beast::tcp_stream& stream) {
  return streams_.Serve(watch.filter, watch.from, stream);
}

}  // namespace muster
