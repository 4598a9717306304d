// musterctl's output: sends a subcommand's request, reads musterd's JSON
// answer and prints it (output.h says what each piece does).

#include "cli/output.h"

#include <algorithm>
#include <chrono>
#include <iostream>

#include "core/duration.h"
#include "core/strings.h"

namespace muster::cli {

absl::Status UnexpectedAnswer(std::string_view why) {
  return absl::InternalError(muster::StrCat("unexpected answer from musterd: ", why));
}

absl::StatusOr<json::object> ParseObject(const std::string& text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return UnexpectedAnswer(ec.message());
  if (!v.is_object()) return UnexpectedAnswer("not a JSON object");
  return std::move(v.get_object());
}

uint64_t GetUnsigned(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return 0;
  if (v->is_uint64()) return v->get_uint64();
  if (v->is_int64() && v->get_int64() >= 0) return static_cast<uint64_t>(v->get_int64());
  return 0;
}

std::string GetString(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

absl::StatusOr<const json::array*> GetArray(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_array()) {
    return UnexpectedAnswer(muster::StrCat("no \"", key, "\" array"));
  }
  return &v->get_array();
}

void PrintRaw(const std::string& body) {
  std::cout << body;
  if (body.empty() || body.back() != '\n') std::cout << '\n';
}

void PrintTable(const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths(header.size());
  auto measure = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  };
  measure(header);
  for (const auto& row : rows) measure(row);
  auto print = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size() + 2, ' ');
    }
    std::cout << line << '\n';
  };
  print(header);
  for (const auto& row : rows) print(row);
}

std::string FormatMetadata(const std::map<std::string, std::string>& metadata) {
  if (metadata.empty()) return "-";
  std::string out;
  for (const auto& [key, value] : metadata) {
    if (!out.empty()) out += ',';
    muster::StrAppend(&out, key, "=", value);
  }
  return out;
}

std::string FormatTags(const std::vector<std::string>& tags) {
  if (tags.empty()) return "-";
  std::string out;
  for (const std::string& tag : tags) {
    if (!out.empty()) out += ',';
    out += tag;
  }
  return out;
}

std::string FormatTtl(uint64_t seconds) {
  if (seconds == 0) return "none";
  return FormatDuration(std::chrono::seconds(seconds));
}

absl::StatusOr<HttpResponse> Call(const GlobalOptions& options, Request request) {
  wire::HttpRequest http_request;
  http_request.method = std::move(request.method);
  http_request.target = std::move(request.target);
  http_request.body = std::move(request.body);
  http_request.headers = std::move(request.headers);
  wire::HttpClient http(options.address);
  auto response = http.Do(http_request, options.timeout());
  if (!response.ok()) return response.status();
  if (response->status < 200 || response->status > 299) return StatusFromResponse(*response);
  return response;
}

absl::Status CallAndPrint(const GlobalOptions& options, Request request, const Render& render) {
  auto response = Call(options, std::move(request));
  if (!response.ok()) return response.status();
  if (options.json) {
    PrintRaw(response->body);
    return absl::OkStatus();
  }
  auto answer = ParseObject(response->body);
  if (!answer.ok()) return answer.status();
  return render(*response, *answer);
}

}  // namespace muster::cli
