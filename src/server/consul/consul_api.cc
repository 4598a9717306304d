#include "server/consul/consul_api.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <set>

#include <unistd.h>

#include "core/duration.h"
#include "core/strings.h"
#include "core/utf8.h"
#include "core/validation.h"
#include "server/api_handler.h"

// As in api_handler.cc: GCC 12 mistakes Asio's coroutine frame allocation
// for a mismatched new/delete pair.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace muster {
namespace json = boost::json;
namespace {

using TimerClock = asio::steady_timer::clock_type;

// Consul answers errors as plain text. It is made valid UTF-8, as every
// answer of musterd is: the messages quote what clients sent.
Response Text(http::status status, std::string_view body) {
  Response res{status, 11};
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.body() = ToValidUtf8(body);
  return res;
}

// What a client sent, for a message: its first `max_bytes` bytes at most,
// ill-formed UTF-8 replaced.
std::string Quoted(std::string_view text, size_t max_bytes) {
  std::string valid = ToValidUtf8(text.substr(0, max_bytes + 4));
  return std::string(Utf8Prefix(valid, max_bytes));
}

Response Empty() {
  Response res{http::status::ok, 11};
  return res;
}

Response Json(const json::value& body) { return JsonResponse(http::status::ok, body); }

Response NotAllowed(http::verb method) {
  return Text(http::status::method_not_allowed,
              StrCat("method ", std::string_view(http::to_string(method)), " not allowed"));
}

// What a failed write or report answers, in Consul's manner: the status
// code of the failure and its message as text.
Response Failure(const absl::Status& s) {
  http::status code = http::status::internal_server_error;
  if (absl::IsInvalidArgument(s)) code = http::status::bad_request;
  if (absl::IsNotFound(s)) code = http::status::not_found;
  if (absl::IsPermissionDenied(s)) code = http::status::forbidden;
  if (absl::IsResourceExhausted(s)) code = http::status::too_many_requests;
  if (absl::IsUnavailable(s)) code = http::status::service_unavailable;
  return Text(code, MessageOf(s));
}

// A boolean query flag as Consul reads one: present without a value, or
// with 1/true/0/false. Nullopt when absent; `bad` set for another value.
std::optional<bool> Flag(const Target& t, std::string_view name, bool* bad) {
  std::optional<std::string> v = t.Param(name);
  if (!v) return std::nullopt;
  if (v->empty() || *v == "1" || *v == "true" || *v == "True" || *v == "TRUE") return true;
  if (*v == "0" || *v == "false" || *v == "False" || *v == "FALSE") return false;
  *bad = true;
  return std::nullopt;
}

std::string HostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "muster";
  std::string out(name);
  // A node name is a Muster name: keep what is allowed.
  for (char& c : out) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) c = '-';
  }
  return out.substr(0, 128);
}

// The host part of host:port, without brackets.
std::string HostOf(const std::string& address) {
  auto split = SplitHostPort(address, AddressUse::kListen);
  return split.ok() ? split->first : "127.0.0.1";
}

}  // namespace

ConsulApi::ConsulApi(const ServerConfig& config, Catalog& catalog, ApiHandler& native)
    : config_(config), catalog_(catalog), native_(native) {
  agent_.datacenter = config.datacenter;
  agent_.node = config.node_name.empty() ? HostName() : config.node_name;
  agent_.node_id = consul::NodeIdFor(agent_.node);
  SetListenAddress(config.listen);
}

void ConsulApi::SetListenAddress(std::string listen) {
  self_ = config_.advertise.empty() ? std::move(listen) : config_.advertise;
  agent_.address = HostOf(self_);
}

awaitable<Response> ConsulApi::Handle(const Request& req, const Target& t, http::verb method) {
  const auto& seg = t.segments;  // seg[0] == "v1"
  if (auto dc = t.Param("dc"); dc && !dc->empty() && *dc != agent_.datacenter) {
    co_return Text(http::status::internal_server_error, "No path to datacenter");
  }
  std::string ns = t.Param("ns").value_or("");
  if (ns.empty()) ns = std::string(kDefaultNamespace);
  if (auto s = ValidateName("namespace", ns, config_.limits); !s.ok()) {
    co_return Text(http::status::bad_request, MessageOf(s));
  }
  if (seg.size() >= 2) {
    if (seg[1] == "agent") co_return co_await AgentPaths(req, t, method, ns);
    if (seg[1] == "catalog") co_return co_await CatalogPaths(req, t, method, ns);
    if (seg[1] == "health") {
      if (method != http::verb::get) co_return NotAllowed(method);
      co_return co_await HealthPaths(t, ns);
    }
    if (seg[1] == "status") {
      if (method != http::verb::get) co_return NotAllowed(method);
      co_return StatusPaths(t);
    }
  }
  co_return Text(http::status::not_found, "404 page not found");
}

// --- agent ------------------------------------------------------------------

awaitable<Response> ConsulApi::AgentPaths(const Request& req, const Target& t, http::verb method,
                                     const std::string& ns) {
  const auto& seg = t.segments;
  const bool get = method == http::verb::get;
  const bool put = method == http::verb::put || method == http::verb::post;
  if (seg.size() == 3) {
    if (!get) co_return NotAllowed(method);
    auto read = ParseRead(t, ns);
    if (!read.ok()) co_return Text(http::status::bad_request, MessageOf(read.status()));
    if (seg[2] == "services") {
      const uint64_t index = co_await Block(*read, "");
      json::object services;
      for (const auto& in : catalog_.InNamespace(ns)) {
        services[in->id] = consul::AgentServiceJson(*in, agent_);
      }
      co_return ReadAnswer(services, index);
    }
    if (seg[2] == "checks") {
      const uint64_t index = co_await Block(*read, "");
      json::object checks;
      for (const auto& in : catalog_.InNamespace(ns)) {
        for (json::object& c : consul::ServiceChecksJson(*in, agent_)) {
          const std::string id(c["CheckID"].as_string());
          checks[id] = std::move(c);
        }
      }
      co_return ReadAnswer(checks, index);
    }
    if (seg[2] == "self") {
      json::object member{{"Name", agent_.node},
                          {"Addr", agent_.address},
                          {"Port", 8301},
                          {"Tags", json::object{{"dc", agent_.datacenter}, {"role", "consul"}}},
                          {"Status", 1}};
      json::object self{
          {"Config", json::object{{"Datacenter", agent_.datacenter},
                                  {"PrimaryDatacenter", agent_.datacenter},
                                  {"NodeName", agent_.node},
                                  {"NodeID", agent_.node_id},
                                  {"Server", true},
                                  {"Revision", "muster"},
                                  {"Version", "1.15.0"}}},
          {"Member", member},
          {"Meta", json::object{}},
          {"Coord", nullptr}};
      co_return ReadAnswer(self, IndexOf(ns, ""));
    }
    if (seg[2] == "members") {
      json::array members;
      members.push_back(json::object{{"Name", agent_.node},
                                     {"Addr", agent_.address},
                                     {"Port", 8301},
                                     {"Tags", json::object{{"dc", agent_.datacenter}, {"role", "consul"}}},
                                     {"Status", 1}});
      co_return ReadAnswer(members, IndexOf(ns, ""));
    }
  }
  if (seg.size() >= 4 && seg[2] == "service") {
    if (seg.size() == 4 && seg[3] == "register") {
      if (!put) co_return NotAllowed(method);
      co_return co_await RegisterService(req, ns);
    }
    if (seg.size() == 5 && seg[3] == "deregister") {
      if (!put && !get) co_return NotAllowed(method);
      co_return co_await DeregisterService(ns, seg[4]);
    }
    if (seg.size() == 5 && seg[3] == "maintenance") {
      if (!put) co_return NotAllowed(method);
      co_return co_await Maintenance(t, ns, seg[4]);
    }
    if (seg.size() == 4) {
      if (!get) co_return NotAllowed(method);
      auto read = ParseRead(t, ns);
      if (!read.ok()) co_return Text(http::status::bad_request, MessageOf(read.status()));
      std::shared_ptr<const Instance> in = FindService(ns, seg[3]);
      if (in == nullptr) {
        co_return Text(http::status::not_found, StrCat("unknown service ID: ", Quoted(seg[3], 256)));
      }
      // Blocks on the service the id belongs to now, then reads it again.
      const uint64_t index = co_await Block(*read, in->service);
      in = FindService(ns, seg[3]);
      if (in == nullptr) {
        co_return Text(http::status::not_found, StrCat("unknown service ID: ", Quoted(seg[3], 256)));
      }
      co_return ReadAnswer(consul::AgentServiceJson(*in, agent_), index);
    }
  }
  if (seg.size() == 5 && seg[2] == "check") {
    const std::string& verb = seg[3];
    if (verb == "pass" || verb == "warn" || verb == "fail") {
      if (!put && !get) co_return NotAllowed(method);
      co_return co_await UpdateCheck(req, t, ns, verb, seg[4]);
    }
    if (verb == "update") {
      if (!put) co_return NotAllowed(method);
      co_return co_await UpdateCheck(req, t, ns, verb, seg[4]);
    }
  }
  co_return Text(http::status::not_found, "404 page not found");
}

awaitable<Response> ConsulApi::RegisterService(const Request& req, const std::string& ns) {
  auto instance = consul::ParseServiceDefinition(req.body(), ns, agent_, config_.limits);
  if (!instance.ok()) co_return Text(http::status::bad_request, MessageOf(instance.status()));
  if (auto s = native_.AllowScriptChecks(req, *instance); !s.ok()) co_return Failure(s);
  const std::string id = instance->id;
  const std::string service = instance->service;
  auto result = co_await AwaitCallback<absl::StatusOr<WriteResult>>(
      [&](auto done) { catalog_.Register(*std::move(instance), std::move(done)); });
  if (!result.ok()) co_return Failure(result.status());
  // A service ID names one service on a Consul agent: registered under a
  // new Name, the service moves, so the instance of that id under the old
  // name goes.
  for (const auto& other : catalog_.InNamespace(ns, id)) {
    if (other->service == service) continue;
    InstanceKey key = KeyOf(*other);
    auto gone = co_await AwaitCallback<absl::StatusOr<WriteResult>>(
        [&](auto done) { catalog_.Deregister(std::move(key), std::move(done)); });
    if (!gone.ok() && !absl::IsNotFound(gone.status())) co_return Failure(gone.status());
  }
  co_return Empty();
}

awaitable<Response> ConsulApi::DeregisterService(const std::string& ns, const std::string& id) {
  std::shared_ptr<const Instance> in = FindService(ns, id);
  if (in == nullptr) {
    co_return Text(http::status::not_found,
                   StrCat("Unknown service ID \"", Quoted(id, 256),
                          "\". Ensure that the service ID is passed, not the service name."));
  }
  InstanceKey key = KeyOf(*in);
  auto result = co_await AwaitCallback<absl::StatusOr<WriteResult>>(
      [&](auto done) { catalog_.Deregister(std::move(key), std::move(done)); });
  if (!result.ok()) co_return Failure(result.status());
  co_return Empty();
}

awaitable<Response> ConsulApi::Maintenance(const Target& t, const std::string& ns,
                                           const std::string& id) {
  std::optional<std::string> enable = t.Param("enable");
  if (!enable || enable->empty()) co_return Text(http::status::bad_request, "Missing value for enable");
  bool bad = false;
  std::optional<bool> on = Flag(t, "enable", &bad);
  if (bad || !on) {
    co_return Text(http::status::bad_request, StrCat("Invalid value for enable: \"", Quoted(*enable, 64), "\""));
  }
  std::shared_ptr<const Instance> in = FindService(ns, id);
  if (in == nullptr) {
    co_return Text(http::status::not_found, StrCat("Unknown service ID \"", Quoted(id, 256), "\""));
  }
  const InstanceStatus want = *on ? InstanceStatus::kDisabled : InstanceStatus::kEnabled;
  if (in->status == want) co_return Empty();
  Instance changed = *in;
  changed.status = want;
  auto result = co_await AwaitCallback<absl::StatusOr<WriteResult>>(
      [&](auto done) { catalog_.Register(std::move(changed), std::move(done)); });
  if (!result.ok()) co_return Failure(result.status());
  co_return Empty();
}

awaitable<Response> ConsulApi::UpdateCheck(const Request& req, const Target& t, const std::string& ns,
                                           const std::string& verb, const std::string& check_id) {
  Health status = verb == "pass" ? Health::kPassing : verb == "warn" ? Health::kWarning : Health::kCritical;
  std::string output = t.Param("note").value_or("");
  if (verb == "update") {
    // {"Status": "...", "Output": "..."}, field names in any case.
    if (req.body().size() > config_.limits.max_body_bytes) {
      co_return Text(http::status::bad_request, "Request body too large");
    }
    boost::system::error_code ec;
    json::value v = json::parse(req.body(), ec);
    if (ec || !v.is_object()) co_return Text(http::status::bad_request, "Request decode failed: not a JSON object");
    std::optional<Health> given;
    for (const auto& [k, val] : v.get_object()) {
      std::string key(k);
      std::transform(key.begin(), key.end(), key.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (key == "status" && val.is_string()) {
        given = consul::ParseCheckStatus(val.get_string());
        if (!given) co_return Text(http::status::bad_request, "Invalid check status");
      } else if (key == "output" && val.is_string()) {
        output = std::string(val.get_string());
      }
    }
    if (!given) co_return Text(http::status::bad_request, "Invalid check status");
    status = *given;
  }
  std::shared_ptr<const Instance> owner = FindCheckOwner(ns, check_id);
  if (owner == nullptr) {
    co_return Text(http::status::not_found,
                   StrCat("Unknown check ID \"", Quoted(check_id, 256),
                          "\". Ensure that the check ID is passed, not the check name."));
  }
  const Check* check = owner->FindCheck(check_id);
  if (check == nullptr || !check->IsReported()) {
    co_return Text(http::status::internal_server_error,
                   StrCat("CheckID \"", Quoted(check_id, 256), "\" does not have associated TTL"));
  }
  absl::Status s = co_await native_.ReportCheck(KeyOf(*owner), check_id, status, std::move(output));
  if (!s.ok()) co_return Failure(s);
  co_return Empty();
}

// --- catalog ----------------------------------------------------------------

awaitable<Response> ConsulApi::CatalogPaths(const Request& req, const Target& t, http::verb method,
                                       const std::string& ns) {
  const auto& seg = t.segments;
  const bool put = method == http::verb::put || method == http::verb::post;
  if (seg.size() == 3 && seg[2] == "register") {
    if (!put) co_return NotAllowed(method);
    auto instance = consul::ParseCatalogRegistration(req.body(), ns, agent_, config_.limits);
    if (!instance.ok()) co_return Text(http::status::bad_request, MessageOf(instance.status()));
    if (auto s = native_.AllowScriptChecks(req, *instance); !s.ok()) co_return Failure(s);
    auto result = co_await AwaitCallback<absl::StatusOr<WriteResult>>(
        [&](auto done) { catalog_.Register(*std::move(instance), std::move(done)); });
    if (!result.ok()) co_return Failure(result.status());
    co_return Json(true);
  }
  if (seg.size() == 3 && seg[2] == "deregister") {
    if (!put) co_return NotAllowed(method);
    auto gone = consul::ParseCatalogDeregistration(req.body(), config_.limits);
    if (!gone.ok()) co_return Text(http::status::bad_request, MessageOf(gone.status()));
    if (gone->service_id.empty()) {
      co_return Text(http::status::bad_request,
                     "Deregistering a node or a node check is not supported by this registry: "
                     "give ServiceID");
    }
    Response res = co_await DeregisterService(ns, gone->service_id);
    if (res.result() != http::status::ok) co_return res;
    co_return Json(true);
  }
  if (method != http::verb::get) co_return NotAllowed(method);
  if (seg.size() == 3 && seg[2] == "datacenters") {
    co_return ReadAnswer(json::array{json::string(agent_.datacenter)}, IndexOf(ns, ""));
  }
  auto read = ParseRead(t, ns);
  if (!read.ok()) co_return Text(http::status::bad_request, MessageOf(read.status()));
  if (seg.size() == 3 && seg[2] == "services") {
    const uint64_t index = co_await Block(*read, "");
    std::map<std::string, std::set<std::string>> tags;
    for (const auto& in : catalog_.InNamespace(ns)) {
      tags[in->service].insert(in->tags.begin(), in->tags.end());
    }
    json::object services;
    for (const auto& [name, set] : tags) services[name] = json::array(set.begin(), set.end());
    co_return ReadAnswer(services, index);
  }
  if (seg.size() == 3 && seg[2] == "nodes") {
    const uint64_t index = co_await Block(*read, "");
    co_return ReadAnswer(json::array{consul::NodeJson(agent_)}, index);
  }
  if (seg.size() == 4 && seg[2] == "service") {
    auto filter = TagFilter(t);
    if (!filter.ok()) co_return Text(http::status::bad_request, MessageOf(filter.status()));
    const uint64_t index = co_await Block(*read, seg[3]);
    json::array out;
    for (const auto& in : catalog_.List(ns, seg[3], *filter).instances) {
      out.push_back(consul::CatalogServiceJson(*in, agent_));
    }
    co_return ReadAnswer(out, index);
  }
  co_return Text(http::status::not_found, "404 page not found");
}

// --- health -----------------------------------------------------------------

awaitable<Response> ConsulApi::HealthPaths(const Target& t, const std::string& ns) {
  const auto& seg = t.segments;
  if (seg.size() != 4) co_return Text(http::status::not_found, "404 page not found");
  auto read = ParseRead(t, ns);
  if (!read.ok()) co_return Text(http::status::bad_request, MessageOf(read.status()));
  if (seg[2] == "service") {
    bool bad = false;
    const bool passing = Flag(t, "passing", &bad).value_or(false);
    if (bad) co_return Text(http::status::bad_request, "Invalid value for ?passing");
    std::optional<consul::Filter> expression;
    if (auto text = t.Param("filter"); text && !text->empty()) {
      auto parsed = consul::Filter::Parse(*text);
      if (!parsed.ok()) co_return Text(http::status::bad_request, MessageOf(parsed.status()));
      expression = *std::move(parsed);
    }
    auto filter = TagFilter(t);
    if (!filter.ok()) co_return Text(http::status::bad_request, MessageOf(filter.status()));
    const uint64_t index = co_await Block(*read, seg[3]);
    json::array out;
    for (const auto& in : catalog_.List(ns, seg[3], *filter).instances) {
      if (passing && consul::ConsulHealth(*in) != Health::kPassing) continue;
      json::object entry = consul::ServiceEntryJson(*in, agent_);
      if (expression && !expression->Matches(SubjectOf(*in, entry))) continue;
      out.push_back(std::move(entry));
    }
    co_return ReadAnswer(out, index);
  }
  if (seg[2] == "checks") {
    const uint64_t index = co_await Block(*read, seg[3]);
    json::array out;
    for (const auto& in : catalog_.List(ns, seg[3], ListFilter{}).instances) {
      for (json::object& c : consul::ServiceChecksJson(*in, agent_)) out.push_back(std::move(c));
    }
    co_return ReadAnswer(out, index);
  }
  if (seg[2] == "state") {
    std::optional<Health> state;
    if (seg[3] != "any") {
      state = consul::ParseCheckStatus(seg[3]);
      if (!state) co_return Text(http::status::bad_request, "Invalid state");
    }
    const uint64_t index = co_await Block(*read, "");
    json::array out;
    if (!state || *state == Health::kPassing) out.push_back(consul::NodeCheckJson(agent_));
    for (const auto& in : catalog_.InNamespace(ns)) {
      for (json::object& c : consul::ServiceChecksJson(*in, agent_)) {
        if (state && consul::ParseCheckStatus(c["Status"].as_string()) != state) continue;
        out.push_back(std::move(c));
      }
    }
    co_return ReadAnswer(out, index);
  }
  co_return Text(http::status::not_found, "404 page not found");
}

Response ConsulApi::StatusPaths(const Target& t) {
  const WritePathStatus writes = catalog_.write_status();
  std::string leader = self_;
  if (writes.election) leader = writes.election->leader;
  const uint64_t index = IndexOf(std::string(kDefaultNamespace), "");
  if (t.segments.size() == 3 && t.segments[2] == "leader") {
    return ReadAnswer(json::string(leader), index);
  }
  if (t.segments.size() == 3 && t.segments[2] == "peers") {
    json::array peers;
    if (!leader.empty()) peers.emplace_back(leader);
    return ReadAnswer(peers, index);
  }
  return Text(http::status::not_found, "404 page not found");
}

// --- shared -----------------------------------------------------------------

std::shared_ptr<const Instance> ConsulApi::FindService(const std::string& ns,
                                                       const std::string& id) const {
  if (id.empty()) return nullptr;
  auto found = catalog_.InNamespace(ns, id);
  return found.empty() ? nullptr : found.front();
}

std::shared_ptr<const Instance> ConsulApi::FindCheckOwner(const std::string& ns,
                                                          const std::string& check_id) const {
  // Consul's own ids name the service: "service:{id}" or "service:{id}:{n}".
  constexpr std::string_view kPrefix = "service:";
  if (check_id.starts_with(kPrefix)) {
    std::string id = check_id.substr(kPrefix.size());
    std::vector<std::string> candidates{id};
    if (size_t colon = id.rfind(':'); colon != std::string::npos) candidates.push_back(id.substr(0, colon));
    for (const std::string& c : candidates) {
      for (const auto& in : catalog_.InNamespace(ns, c)) {
        if (in->FindCheck(check_id) != nullptr) return in;
      }
    }
  }
  for (const auto& in : catalog_.InNamespace(ns)) {
    if (in->FindCheck(check_id) != nullptr) return in;
  }
  return nullptr;
}

absl::StatusOr<ConsulApi::Read> ConsulApi::ParseRead(const Target& t, const std::string& ns) const {
  Read read{ns};
  // Only /v1/health/service/{name} runs filters: anywhere else one would
  // be ignored, and an answer that ignored it would mislead.
  const bool filters = t.segments.size() == 4 && t.segments[1] == "health" && t.segments[2] == "service";
  if (!filters && t.Param("filter")) {
    return absl::InvalidArgumentError("?filter= is supported on /v1/health/service/{name} only");
  }
  if (auto index = t.Param("index"); index && !index->empty()) {
    uint64_t n = 0;
    auto [end, ec] = std::from_chars(index->data(), index->data() + index->size(), n);
    if (ec != std::errc() || end != index->data() + index->size()) {
      return absl::InvalidArgumentError("Invalid index");
    }
    read.index = n;
  }
  // Consul's default wait is 5 minutes, and a longer one is cut to the
  // longest (not refused).
  read.wait = std::min(config_.default_wait, config_.max_wait);
  if (auto wait = t.Param("wait"); wait && !wait->empty()) {
    auto parsed = ParseDuration(*wait);
    if (!parsed.ok()) return absl::InvalidArgumentError("Invalid wait time");
    read.wait = std::min(*parsed, config_.max_wait);
  }
  return read;
}

consul::FilterSubject ConsulApi::SubjectOf(const Instance& in, const json::object& entry) const {
  consul::FilterSubject subject{in, agent_.node, agent_.address, agent_.datacenter, agent_.node_id, {}};
  for (const auto& c : entry.at("Checks").as_array()) {
    subject.checks.emplace_back(c.at("CheckID").as_string(), c.at("Status").as_string());
  }
  return subject;
}

absl::StatusOr<ListFilter> ConsulApi::TagFilter(const Target& t) const {
  ListFilter filter;
  filter.tags = t.All("tag");
  if (filter.tags.size() > config_.limits.max_tags) {
    return absl::InvalidArgumentError(StrCat("more than ", config_.limits.max_tags, " tag filters"));
  }
  for (const std::string& tag : filter.tags) {
    if (auto s = ValidateTag(tag, config_.limits); !s.ok()) return s;
  }
  return filter;
}

awaitable<uint64_t> ConsulApi::Block(const Read& read, const std::string& service) {
  if (read.index > 0) {
    co_await native_.WaitForChange(read.ns, service, read.index, TimerClock::now() + read.wait);
  }
  co_return IndexOf(read.ns, service);
}

uint64_t ConsulApi::IndexOf(const std::string& ns, const std::string& service) const {
  const uint64_t index = service.empty() ? catalog_.revision() : catalog_.ServiceRevision(ns, service);
  return std::max<uint64_t>(index, 1);  // Consul's clients take 0 for "no index"
}

Response ConsulApi::ReadAnswer(const json::value& body, uint64_t index) const {
  Response res = Json(body);
  res.set("X-Consul-Index", StrCat(index));
  const WritePathStatus writes = catalog_.write_status();
  const bool known = !writes.election || !writes.election->leader.empty();
  res.set("X-Consul-KnownLeader", known ? "true" : "false");
  res.set("X-Consul-LastContact", "0");
  return res;
}

}  // namespace muster
