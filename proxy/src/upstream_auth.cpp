#include "upstream_auth.hpp"

#include <Poco/Dynamic/Var.h>
#include <Poco/Exception.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <algorithm>
#include <arpa/inet.h>
#include <cctype>
#include <charconv>
#include <cmath>
#include <libpsl.h>
#include <openssl/evp.h>
#include <stdexcept>

namespace proxy {
namespace {

using namespace std::chrono_literals;

constexpr auto kDefaultTokenLifetime = 60s;

std::string toLower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// tchar of RFC 7230 section 3.2.6.
bool isTokenChar(char c) {
  if (std::isalnum(static_cast<unsigned char>(c))) {
    return true;
  }
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool isSpace(char c) {
  return c == ' ' || c == '\t';
}

// A cursor over one header value for the challenge grammar of RFC 7235 section 2.1.
class ChallengeReader {
public:
  explicit ChallengeReader(std::string_view text) : text_(text) {}

  bool atEnd() const { return pos_ >= text_.size(); }
  size_t position() const { return pos_; }
  void rewind(size_t pos) { pos_ = pos; }
  bool peek(char c) const { return pos_ < text_.size() && text_[pos_] == c; }

  void skipSpaces() {
    while (pos_ < text_.size() && isSpace(text_[pos_])) {
      ++pos_;
    }
  }

  void skipSpacesAndCommas() {
    while (pos_ < text_.size() && (isSpace(text_[pos_]) || text_[pos_] == ',')) {
      ++pos_;
    }
  }

  std::string_view token() {
    const size_t start = pos_;
    while (pos_ < text_.size() && isTokenChar(text_[pos_])) {
      ++pos_;
    }
    return text_.substr(start, pos_ - start);
  }

  // A quoted-string with its backslash escapes undone; nothing when the closing quote is missing.
  std::optional<std::string> quoted() {
    ++pos_; // the opening quote
    std::string value;
    while (pos_ < text_.size()) {
      const char c = text_[pos_++];
      if (c == '"') {
        return value;
      }
      if (c == '\\' && pos_ < text_.size()) {
        value += text_[pos_++];
        continue;
      }
      value += c;
    }
    return std::nullopt;
  }

  // Unquoted values are tokens by the grammar; registries also send bare URLs, so anything up to
  // the next separator is taken.
  std::string_view bareValue() {
    const size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] != ',' && !isSpace(text_[pos_])) {
      ++pos_;
    }
    return text_.substr(start, pos_ - start);
  }

  void advance() { ++pos_; }

private:
  std::string_view text_;
  size_t pos_ = 0;
};

// Reads the auth-params after a scheme until the next scheme, the end, or a fault. Returns false
// on a fault (the header cannot be read any further).
bool readParams(ChallengeReader& reader, AuthChallenge& challenge) {
  while (true) {
    reader.skipSpacesAndCommas();
    if (reader.atEnd()) {
      return true;
    }
    const size_t start = reader.position();
    const auto name = reader.token();
    if (name.empty()) {
      return false;
    }
    reader.skipSpaces();
    if (!reader.peek('=')) {
      // Not a parameter: the scheme of the next challenge.
      reader.rewind(start);
      return true;
    }
    reader.advance();
    reader.skipSpaces();
    std::string value;
    if (reader.peek('"')) {
      auto unquoted = reader.quoted();
      if (!unquoted) {
        return false;
      }
      value = std::move(*unquoted);
    } else {
      value = std::string(reader.bareValue());
    }
    challenge.params[toLower(name)] = std::move(value);
    reader.skipSpaces();
    if (!reader.atEnd() && !reader.peek(',')) {
      return false;
    }
  }
}

// A UTC civil date and time; nothing when a field is out of range.
std::optional<std::chrono::sys_seconds> civilTime(int year, unsigned month, unsigned day, int hour,
                                                  int minute, int second) {
  const std::chrono::year_month_day date{std::chrono::year(year), std::chrono::month(month),
                                         std::chrono::day(day)};
  if (!date.ok() || hour > 23 || minute > 59 || second > 60) {
    return std::nullopt;
  }
  return std::chrono::sys_days(date) + std::chrono::hours(hour) + std::chrono::minutes(minute) +
         std::chrono::seconds(second);
}

bool readNumber(std::string_view text, size_t& pos, size_t digits, int& out) {
  if (pos + digits > text.size()) {
    return false;
  }
  const auto* first = text.data() + pos;
  const auto [end, ec] = std::from_chars(first, first + digits, out);
  if (ec != std::errc() || end != first + digits) {
    return false;
  }
  pos += digits;
  return true;
}

bool expect(std::string_view text, size_t& pos, std::string_view chars) {
  if (pos < text.size() && chars.find(text[pos]) != std::string_view::npos) {
    ++pos;
    return true;
  }
  return false;
}

// RFC 3339 date-time: 2024-05-10T12:34:56.123456789Z or with a +hh:mm offset.
std::optional<common::Clock::TimePoint> parseRfc3339(std::string_view text) {
  size_t pos = 0;
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!readNumber(text, pos, 4, year) || !expect(text, pos, "-") ||
      !readNumber(text, pos, 2, month) || !expect(text, pos, "-") ||
      !readNumber(text, pos, 2, day) || !expect(text, pos, "Tt ") ||
      !readNumber(text, pos, 2, hour) || !expect(text, pos, ":") ||
      !readNumber(text, pos, 2, minute) || !expect(text, pos, ":") ||
      !readNumber(text, pos, 2, second)) {
    return std::nullopt;
  }
  auto time = civilTime(year, static_cast<unsigned>(month), static_cast<unsigned>(day), hour,
                        minute, second);
  if (!time) {
    return std::nullopt;
  }
  common::Clock::TimePoint result = *time;
  if (expect(text, pos, ".")) {
    // Fractions below a second are dropped: a token's life is counted in seconds.
    while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
      ++pos;
    }
  }
  if (expect(text, pos, "Zz")) {
    return pos == text.size() ? std::optional(result) : std::nullopt;
  }
  const bool ahead = pos < text.size() && text[pos] == '+';
  int offset_hours = 0, offset_minutes = 0;
  if (!expect(text, pos, "+-") || !readNumber(text, pos, 2, offset_hours) ||
      !expect(text, pos, ":") || !readNumber(text, pos, 2, offset_minutes) || pos != text.size()) {
    return std::nullopt;
  }
  const auto offset = std::chrono::hours(offset_hours) + std::chrono::minutes(offset_minutes);
  return ahead ? result - offset : result + offset;
}

// expires_in arrives as an integer, sometimes as a float or a numeric string.
std::optional<long> readSeconds(const Poco::Dynamic::Var& value) {
  try {
    if (value.isEmpty()) {
      return std::nullopt;
    }
    const double seconds = value.convert<double>();
    if (!std::isfinite(seconds) || seconds <= 0 || seconds > 1e9) {
      return std::nullopt;
    }
    return static_cast<long>(seconds);
  } catch (const Poco::Exception&) {
    return std::nullopt;
  }
}

std::string percentEncode(std::string_view text) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

bool isIpAddress(const std::string& host) {
  unsigned char buffer[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buffer) == 1 ||
         inet_pton(AF_INET6, host.c_str(), buffer) == 1;
}

const psl_ctx_t* publicSuffixList() {
  // The list compiled into libpsl; without one, only identical hosts match.
  static const psl_ctx_t* psl = psl_builtin();
  return psl;
}

} // namespace

std::string AuthChallenge::param(const std::string& name) const {
  const auto it = params.find(name);
  return it == params.end() ? std::string() : it->second;
}

std::vector<AuthChallenge> parseAuthChallenges(std::string_view header) {
  std::vector<AuthChallenge> challenges;
  ChallengeReader reader(header);
  while (true) {
    reader.skipSpacesAndCommas();
    if (reader.atEnd()) {
      break;
    }
    const auto scheme = reader.token();
    if (scheme.empty()) {
      break;
    }
    AuthChallenge challenge;
    challenge.scheme = toLower(scheme);
    const bool readable = readParams(reader, challenge);
    challenges.push_back(std::move(challenge));
    if (!readable) {
      break;
    }
  }
  return challenges;
}

std::optional<AuthChallenge> selectChallenge(const std::vector<std::string>& header_values) {
  std::optional<AuthChallenge> basic;
  for (const auto& value : header_values) {
    for (auto& challenge : parseAuthChallenges(value)) {
      if (challenge.isBearer() && !challenge.param("realm").empty()) {
        return challenge;
      }
      if (challenge.isBasic() && !basic) {
        basic = std::move(challenge);
      }
    }
  }
  return basic;
}

common::Result<BearerToken, std::string> parseTokenResponse(std::string_view body,
                                                            common::Clock::TimePoint now) {
  Poco::JSON::Object::Ptr object;
  try {
    Poco::JSON::Parser parser;
    object = parser.parse(std::string(body)).extract<Poco::JSON::Object::Ptr>();
  } catch (const Poco::Exception& e) {
    return std::string("token answer is not a JSON object: ") + e.message();
  } catch (const std::exception& e) {
    return std::string("token answer is not a JSON object: ") + e.what();
  }
  if (!object) {
    return std::string("token answer is not a JSON object");
  }

  BearerToken token;
  for (const char* field : {"token", "access_token"}) {
    if (object->has(field) && object->get(field).isString()) {
      token.value = object->getValue<std::string>(field);
      if (!token.value.empty()) {
        break;
      }
    }
  }
  if (token.value.empty()) {
    return std::string("token answer has neither \"token\" nor \"access_token\"");
  }

  auto lifetime = std::chrono::seconds(kDefaultTokenLifetime);
  if (object->has("expires_in")) {
    if (auto seconds = readSeconds(object->get("expires_in"))) {
      lifetime = std::chrono::seconds(*seconds);
    }
  }
  auto issued = now;
  if (object->has("issued_at") && object->get("issued_at").isString()) {
    if (auto at = parseRfc3339(object->getValue<std::string>("issued_at"))) {
      issued = std::min(issued, *at);
    }
  }
  token.expires_at = issued + lifetime;
  return token;
}

std::optional<std::string> TokenCache::get(const std::string& scope) const {
  std::lock_guard lock(mutex_);
  const auto it = tokens_.find(scope);
  if (it == tokens_.end() || clock_.now() + kExpiryMargin >= it->second.expires_at) {
    return std::nullopt;
  }
  return it->second.value;
}

void TokenCache::put(const std::string& scope, BearerToken token) {
  std::lock_guard lock(mutex_);
  // Expired entries of other scopes go too, so the map stays as small as the working set.
  const auto now = clock_.now();
  std::erase_if(tokens_, [now](const auto& entry) { return entry.second.expires_at <= now; });
  tokens_[scope] = std::move(token);
}

void TokenCache::drop(const std::string& scope) {
  std::lock_guard lock(mutex_);
  tokens_.erase(scope);
}

std::string tokenRequestUrl(const std::string& realm, const std::string& service,
                            const std::vector<std::string>& scopes) {
  std::string url = realm;
  char separator = realm.find('?') == std::string::npos ? '?' : '&';
  auto add = [&](std::string_view name, std::string_view value) {
    url += separator;
    url += name;
    url += '=';
    url += percentEncode(value);
    separator = '&';
  };
  if (!service.empty()) {
    add("service", service);
  }
  for (const auto& scope : scopes) {
    add("scope", scope);
  }
  return url;
}

std::string basicAuthorization(const std::string& username, const std::string& password) {
  const std::string plain = username + ":" + password;
  std::string encoded(4 * ((plain.size() + 2) / 3) + 1, '\0');
  const int length =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()),
                      reinterpret_cast<const unsigned char*>(plain.data()), plain.size());
  if (length < 0) {
    throw std::runtime_error("EVP_EncodeBlock failed");
  }
  encoded.resize(static_cast<size_t>(length));
  return "Basic " + encoded;
}

std::optional<std::string> urlHost(const std::string& url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) {
    return std::nullopt;
  }
  const auto scheme = toLower(std::string_view(url).substr(0, scheme_end));
  if (scheme != "http" && scheme != "https") {
    return std::nullopt;
  }
  const auto start = scheme_end + 3;
  const auto end = url.find_first_of("/?#", start);
  auto authority =
      std::string_view(url).substr(start, end == std::string::npos ? end : end - start);
  const auto at = authority.rfind('@');
  if (at != std::string_view::npos) {
    authority.remove_prefix(at + 1);
  }
  std::string_view host;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      return std::nullopt;
    }
    host = authority.substr(1, close - 1);
  } else {
    host = authority.substr(0, authority.find(':'));
  }
  if (host.empty()) {
    return std::nullopt;
  }
  return toLower(host);
}

bool sameRegistrableDomain(const std::string& upstream_host, const std::string& other_host) {
  auto normalize = [](const std::string& host) {
    auto lower = toLower(host);
    while (!lower.empty() && lower.back() == '.') {
      lower.pop_back();
    }
    return lower;
  };
  const auto a = normalize(upstream_host);
  const auto b = normalize(other_host);
  if (a.empty() || b.empty()) {
    return false;
  }
  if (a == b) {
    return true;
  }
  if (isIpAddress(a) || isIpAddress(b) || a.find('.') == std::string::npos ||
      b.find('.') == std::string::npos) {
    return false;
  }
  const psl_ctx_t* psl = publicSuffixList();
  if (!psl) {
    return false;
  }
  const char* domain_a = psl_registrable_domain(psl, a.c_str());
  const char* domain_b = psl_registrable_domain(psl, b.c_str());
  return domain_a && domain_b && std::string_view(domain_a) == std::string_view(domain_b);
}

} // namespace proxy
