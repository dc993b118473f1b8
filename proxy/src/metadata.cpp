#include "metadata.hpp"

#include "common/logging.hpp"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <algorithm>
#include <sstream>

namespace proxy {
namespace {

// Memory kept for manifests served often (by digest, for every pull); the rest is read from
// the store again.
constexpr std::size_t kManifestMemoryBytes = 4u << 20;
constexpr std::size_t kMaxLinksInMemory = 100'000;

std::int64_t toMillis(common::Clock::TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

common::Clock::TimePoint fromMillis(std::int64_t ms) {
  return common::Clock::TimePoint(std::chrono::duration_cast<common::Clock::TimePoint::duration>(
      std::chrono::milliseconds(ms)));
}

std::string linkKey(const std::string& repo_key, const Digest& digest) {
  return repo_key + "/_links/" + std::string(digest.algorithm()) + "/" +
         std::string(digest.encoded());
}

std::string manifestKey(const Digest& digest) {
  return "manifests/" + std::string(digest.algorithm()) + "/" + std::string(digest.encoded());
}

void addDigest(const Poco::JSON::Object::Ptr& descriptor, std::vector<Digest>& out) {
  if (!descriptor || !descriptor->has("digest")) {
    return;
  }
  if (auto digest = Digest::parse(descriptor->getValue<std::string>("digest"))) {
    out.push_back(*digest);
  }
}

} // namespace

std::vector<Digest> manifestReferences(std::string_view body) {
  std::vector<Digest> out;
  try {
    Poco::JSON::Parser parser;
    const auto root = parser.parse(std::string(body)).extract<Poco::JSON::Object::Ptr>();
    if (!root) {
      return out;
    }
    addDigest(root->getObject("config"), out);
    addDigest(root->getObject("subject"), out);
    for (const char* list : {"layers", "manifests", "blobs"}) {
      if (auto array = root->getArray(list)) {
        for (size_t i = 0; i < array->size(); ++i) {
          addDigest(array->getObject(static_cast<unsigned>(i)), out);
        }
      }
    }
    // Docker schema 1 names its layers in fsLayers[].blobSum.
    if (auto layers = root->getArray("fsLayers")) {
      for (size_t i = 0; i < layers->size(); ++i) {
        auto layer = layers->getObject(static_cast<unsigned>(i));
        if (layer && layer->has("blobSum")) {
          if (auto digest = Digest::parse(layer->getValue<std::string>("blobSum"))) {
            out.push_back(*digest);
          }
        }
      }
    }
  } catch (const Poco::Exception&) {
    out.clear();
  } catch (const std::exception&) {
    out.clear();
  }
  return out;
}

Metadata::Metadata(BlobStore& store, const common::Clock& clock) : store_(store), clock_(clock) {}

std::string Metadata::repositoryKey(const std::string& upstream,
                                    const RepositoryName& repository) const {
  return "repositories/" + upstream + "/" + repository.str();
}

std::optional<TagRecord> Metadata::tag(const std::string& upstream,
                                       const RepositoryName& repository, const Tag& tag) {
  const auto key = repositoryKey(upstream, repository) + "/_tags/" + tag.str();
  {
    std::lock_guard lock(mutex_);
    if (auto it = tags_.find(key); it != tags_.end()) {
      return it->second;
    }
  }
  const auto text = store_.getMeta(key);
  if (!text) {
    return std::nullopt;
  }
  try {
    Poco::JSON::Parser parser;
    const auto object = parser.parse(*text).extract<Poco::JSON::Object::Ptr>();
    auto digest = Digest::parse(object->getValue<std::string>("digest"));
    if (!digest) {
      return std::nullopt;
    }
    TagRecord record{*digest, object->optValue<std::string>("media_type", ""),
                     object->optValue<std::uint64_t>("size", 0),
                     fromMillis(object->optValue<std::int64_t>("validated_at", 0))};
    std::lock_guard lock(mutex_);
    tags_.insert_or_assign(key, record);
    return record;
  } catch (const std::exception& e) {
    common::logger("storage")->warn("unreadable tag record ignored: key={} err={}", key, e.what());
    return std::nullopt;
  }
}

void Metadata::putTag(const std::string& upstream, const RepositoryName& repository, const Tag& tag,
                      const TagRecord& record) {
  const auto key = repositoryKey(upstream, repository) + "/_tags/" + tag.str();
  Poco::JSON::Object object;
  object.set("digest", record.digest.str());
  object.set("media_type", record.media_type);
  object.set("size", record.size);
  object.set("validated_at", toMillis(record.validated_at));
  std::ostringstream text;
  object.stringify(text);
  {
    std::lock_guard lock(mutex_);
    tags_.insert_or_assign(key, record);
  }
  store_.putMeta(key, text.str());
}

void Metadata::removeTag(const std::string& upstream, const RepositoryName& repository,
                         const Tag& tag) {
  const auto key = repositoryKey(upstream, repository) + "/_tags/" + tag.str();
  {
    std::lock_guard lock(mutex_);
    tags_.erase(key);
  }
  store_.removeMeta(key);
}

std::vector<std::string> Metadata::tags(const std::string& upstream,
                                        const RepositoryName& repository) {
  auto names = store_.listMeta(repositoryKey(upstream, repository) + "/_tags");
  std::sort(names.begin(), names.end());
  return names;
}

bool Metadata::linked(const std::string& upstream, const RepositoryName& repository,
                      const Digest& digest) {
  const auto key = linkKey(repositoryKey(upstream, repository), digest);
  {
    std::lock_guard lock(mutex_);
    if (links_.count(key) > 0) {
      return true;
    }
  }
  if (!store_.hasMeta(key)) {
    return false;
  }
  std::lock_guard lock(mutex_);
  if (links_.size() >= kMaxLinksInMemory) {
    links_.clear();
  }
  links_.insert(key);
  return true;
}

void Metadata::link(const std::string& upstream, const RepositoryName& repository,
                    const Digest& digest) {
  const auto key = linkKey(repositoryKey(upstream, repository), digest);
  {
    std::lock_guard lock(mutex_);
    if (links_.count(key) > 0) {
      return;
    }
  }
  if (!store_.hasMeta(key)) {
    store_.putMeta(key, "");
  }
  std::lock_guard lock(mutex_);
  if (links_.size() >= kMaxLinksInMemory) {
    links_.clear();
  }
  links_.insert(key);
}

bool Metadata::putManifest(const std::string& upstream, const RepositoryName& repository,
                           const CachedManifest& manifest) {
  bool stored = store_.stat(manifest.digest).has_value();
  if (!stored) {
    auto writer = store_.create();
    if (writer.ok() && (*writer)->append(manifest.body).ok()) {
      auto committed = store_.commit(**writer, manifest.digest);
      stored = committed.ok() && committed.value();
      if (stored) {
        noteStored(manifest.body.size());
      }
    }
  }
  if (!stored) {
    common::logger("storage")->warn("manifest not cached, store refused it: digest={}",
                                    manifest.digest.str());
    return false;
  }

  ManifestRecord record{manifest.media_type, manifest.body.size(),
                        manifestReferences(manifest.body)};
  Poco::JSON::Object object;
  object.set("media_type", record.media_type);
  object.set("size", record.size);
  Poco::JSON::Array references;
  for (const auto& reference : record.references) {
    references.add(reference.str());
  }
  object.set("references", references);
  std::ostringstream text;
  object.stringify(text);
  store_.putMeta(manifestKey(manifest.digest), text.str());

  link(upstream, repository, manifest.digest);
  for (const auto& reference : record.references) {
    link(upstream, repository, reference);
  }
  return true;
}

std::optional<CachedManifest> Metadata::manifest(const Digest& digest) {
  {
    std::lock_guard lock(mutex_);
    if (auto it = manifests_.find(digest.str()); it != manifests_.end()) {
      return *it->second;
    }
  }
  const auto record = manifestRecord(digest);
  if (!record) {
    return std::nullopt;
  }
  auto handle = store_.open(digest);
  if (!handle) {
    return std::nullopt;
  }
  std::string body(record->size, '\0');
  std::uint64_t offset = 0;
  while (offset < body.size()) {
    const auto n = handle->read(offset, body.data() + offset, body.size() - offset);
    if (n <= 0) {
      return std::nullopt;
    }
    offset += static_cast<std::uint64_t>(n);
  }
  auto cached = std::make_shared<const CachedManifest>(
      CachedManifest{digest, record->media_type, std::move(body)});
  std::lock_guard lock(mutex_);
  if (manifest_bytes_ + cached->body.size() > kManifestMemoryBytes) {
    manifests_.clear();
    manifest_bytes_ = 0;
  }
  manifests_.emplace(digest.str(), cached);
  manifest_bytes_ += cached->body.size();
  return *cached;
}

std::optional<ManifestRecord> Metadata::manifestRecord(const Digest& digest) {
  const auto text = store_.getMeta(manifestKey(digest));
  if (!text) {
    return std::nullopt;
  }
  try {
    Poco::JSON::Parser parser;
    const auto object = parser.parse(*text).extract<Poco::JSON::Object::Ptr>();
    ManifestRecord record;
    record.media_type = object->optValue<std::string>("media_type", "");
    record.size = object->optValue<std::uint64_t>("size", 0);
    if (auto references = object->getArray("references")) {
      for (size_t i = 0; i < references->size(); ++i) {
        if (auto d = Digest::parse(references->getElement<std::string>(static_cast<unsigned>(i)))) {
          record.references.push_back(*d);
        }
      }
    }
    return record;
  } catch (const std::exception& e) {
    common::logger("storage")->warn("unreadable manifest record ignored: digest={} err={}",
                                    digest.str(), e.what());
    return std::nullopt;
  }
}

void Metadata::collectRepositories(const std::string& prefix, const std::string& name,
                                   std::vector<std::string>& out, int depth) {
  if (depth > 16) {
    return;
  }
  const auto children = store_.listMeta(prefix);
  bool is_repository = false;
  for (const auto& child : children) {
    if (child == "_tags" || child == "_links") {
      is_repository = true;
    } else if (!child.empty() && child.front() != '_') {
      collectRepositories(prefix + "/" + child, name.empty() ? child : name + "/" + child, out,
                          depth + 1);
    }
  }
  if (is_repository && !name.empty()) {
    out.push_back(name);
  }
}

std::vector<std::string> Metadata::repositories(const std::string& upstream) {
  std::vector<std::string> out;
  collectRepositories("repositories/" + upstream, "", out, 0);
  std::sort(out.begin(), out.end());
  return out;
}

void Metadata::onStored(std::function<void(std::uint64_t)> listener) {
  std::lock_guard lock(mutex_);
  stored_listener_ = std::move(listener);
}

void Metadata::noteStored(std::uint64_t bytes) {
  std::function<void(std::uint64_t)> listener;
  {
    std::lock_guard lock(mutex_);
    listener = stored_listener_;
  }
  if (listener) {
    listener(bytes);
  }
}

void Metadata::recordUse(const Digest& digest) {
  const auto now = clock_.now();
  std::lock_guard lock(uses_mutex_);
  pending_uses_.insert_or_assign(digest.str(), now);
}

std::size_t Metadata::flushUses() {
  std::unordered_map<std::string, common::Clock::TimePoint> uses;
  {
    std::lock_guard lock(uses_mutex_);
    uses.swap(pending_uses_);
  }
  for (const auto& [text, when] : uses) {
    if (const auto digest = Digest::parse(text)) {
      store_.touch(*digest, when);
    }
  }
  return uses.size();
}

std::vector<std::string> Metadata::upstreams() {
  auto names = store_.listMeta("repositories");
  std::sort(names.begin(), names.end());
  return names;
}

std::map<std::string, TagRecord> Metadata::tagRecords(const std::string& upstream,
                                                      const RepositoryName& repository) {
  std::map<std::string, TagRecord> records;
  for (const auto& name : tags(upstream, repository)) {
    const auto parsed = Tag::parse(name);
    if (!parsed) {
      continue;
    }
    if (auto record = tag(upstream, repository, *parsed)) {
      records.emplace(name, std::move(*record));
    }
  }
  return records;
}

std::vector<Digest> Metadata::links(const std::string& upstream, const RepositoryName& repository) {
  std::vector<Digest> digests;
  const auto prefix = repositoryKey(upstream, repository) + "/_links";
  for (const auto& algorithm : store_.listMeta(prefix)) {
    for (const auto& encoded : store_.listMeta(prefix + "/" + algorithm)) {
      if (auto digest = Digest::parse(algorithm + ":" + encoded)) {
        digests.push_back(std::move(*digest));
      }
    }
  }
  return digests;
}

void Metadata::unlink(const std::string& upstream, const RepositoryName& repository,
                      const Digest& digest) {
  const auto key = linkKey(repositoryKey(upstream, repository), digest);
  {
    std::lock_guard lock(mutex_);
    links_.erase(key);
  }
  store_.removeMeta(key);
}

bool Metadata::invalidateTag(const std::string& upstream, const RepositoryName& repository,
                             const Tag& name) {
  auto record = tag(upstream, repository, name);
  if (!record) {
    return false;
  }
  record->validated_at = common::Clock::TimePoint{};
  putTag(upstream, repository, name, *record);
  return true;
}

void Metadata::removeRepository(const std::string& upstream, const RepositoryName& repository) {
  // Only this repository's own entries: "library/alpine/_tags/...", not "library/alpine/x/...".
  const auto tags = repositoryKey(upstream, repository) + "/_tags";
  const auto links = repositoryKey(upstream, repository) + "/_links";
  const auto under = [](const std::string& key, const std::string& prefix) {
    return key.rfind(prefix + "/", 0) == 0;
  };
  {
    std::lock_guard lock(mutex_);
    std::erase_if(tags_, [&](const auto& entry) { return under(entry.first, tags); });
    std::erase_if(links_, [&](const auto& key) { return under(key, links); });
  }
  store_.removeMetaTree(tags);
  store_.removeMetaTree(links);
}

void Metadata::removeContent(const Digest& digest) {
  {
    std::lock_guard lock(mutex_);
    if (auto it = manifests_.find(digest.str()); it != manifests_.end()) {
      manifest_bytes_ -= it->second->body.size();
      manifests_.erase(it);
    }
  }
  {
    std::lock_guard lock(uses_mutex_);
    pending_uses_.erase(digest.str());
  }
  store_.removeMeta(manifestKey(digest));
  store_.remove(digest);
}

} // namespace proxy
