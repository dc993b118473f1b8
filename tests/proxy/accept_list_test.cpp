#include "manifests.hpp"

#include <catch2/catch.hpp>

using Catch::Matchers::Contains;

TEST_CASE("AcceptList: what a client allows, and what is asked of the upstream",
          "[proxy][manifests]") {
  const std::string oci = "application/vnd.oci.image.manifest.v1+json";
  const std::string docker = "application/vnd.docker.distribution.manifest.v2+json";

  SECTION("no Accept: anything, and every manifest type upstream") {
    const proxy::AcceptList accept("");
    CHECK(accept.allows(oci));
    CHECK_THAT(accept.upstreamHeader(), Contains(oci) && Contains(docker));
  }
  SECTION("only a wildcard, as curl sends: anything, and every manifest type upstream") {
    const proxy::AcceptList accept("*/*");
    CHECK(accept.allows(oci));
    CHECK_THAT(accept.upstreamHeader(), Contains(oci) && Contains(docker));
  }
  SECTION("named types: only those, and the client's own header upstream") {
    const proxy::AcceptList accept(docker + "; q=0.9, " + oci);
    CHECK(accept.allows(oci));
    CHECK_FALSE(accept.allows("application/vnd.oci.image.index.v1+json"));
    CHECK(accept.upstreamHeader() == docker + "; q=0.9, " + oci);
  }
}
