#!/usr/bin/env bash
# The documentation says what the code does, in the places a user looks:
# - env.example names every environment variable the programs and compose/compose.yml read, and
#   no variable nothing reads (so none is undocumented, and none documented in vain);
# - no C++ code reads the environment behind the configuration loaders' back (getenv);
# - docs/architecture.png is what scripts/render-diagrams.sh makes of docs/architecture.dot;
# - the README's first command brings the bundle up;
# - every relative link in README.md and docs/*.md leads to a file that exists.
source "$(dirname "$0")/lib.sh"
dcp_setup
cd "$DCP_REPO_ROOT" || dcp_die "no repository at $DCP_REPO_ROOT"

# --- env.example ------------------------------------------------------------------------------------
python3 - >"$DCP_TMP/env-check.txt" <<'EOF' || dcp_fail "env.example: $(cat "$DCP_TMP/env-check.txt")"
import pathlib, re, sys

name = r"(?:DCP|REGISTRY|CERTMGR|SETUP|HOMELAB|PROXY|ADMIN_SETUP)_[A-Z0-9_]+|BUILD_JOBS"
read = {}

def note(var, where):
    read.setdefault(var, where)

for path in sorted(pathlib.Path(".").glob("*/**/*.[ch]pp")):
    if path.parts[0] not in ("proxy", "certificate-manager", "admin-setup", "common"):
        continue
    text = path.read_text()
    constants = dict(re.findall(r'constexpr const char\* (k\w+) = "([A-Z0-9_]+)";', text))
    for var in re.findall(r'"(' + name + r')"', text):
        note(var, str(path))
    # Secrets read as NAME or the file NAME_FILE names.
    for constant in re.findall(r"readSecret\(env, (k\w+)", text):
        note(constants[constant] + "_FILE", str(path))
    for var in re.findall(r'applyFileVariant\(env, "([A-Z0-9_]+)"', text):
        note(var + "_FILE", str(path))
    if re.search(r"\b(secure_)?getenv\s*\(", text):
        print(f"{path} calls getenv: read the environment through the configuration loader")

compose = pathlib.Path("compose/compose.yml").read_text()
for var in re.findall(r"\$\{(" + name + r")[:}-]", compose):
    note(var, "compose/compose.yml")

documented = set(re.findall(r"^#?(" + name + r")=", pathlib.Path("env.example").read_text(), re.M))
missing = sorted(set(read) - documented)
unread = sorted(documented - set(read))
for var in missing:
    print(f"{var} (read by {read[var]}) is not in env.example")
for var in unread:
    print(f"{var} is in env.example but nothing reads it")
sys.exit(1 if missing or unread or len(read) < 80 else 0)
EOF
dcp_pass "env.example names exactly the $(grep -cE '^#?[A-Z][A-Z0-9_]+=' env.example) variables read"

# --- the architecture diagram -----------------------------------------------------------------------
command -v dot >/dev/null || dcp_die "graphviz (dot) is needed (scripts/install-deps.sh)"
scripts/render-diagrams.sh "$DCP_TMP/rendered" >/dev/null
cmp -s docs/architecture.png "$DCP_TMP/rendered/architecture.png" ||
  dcp_fail "docs/architecture.png is not the rendering of docs/architecture.dot: run scripts/render-diagrams.sh"
dcp_pass "docs/architecture.png is rendered from docs/architecture.dot"

# --- the README -------------------------------------------------------------------------------------
first=$(awk '/^```sh$/ { getline; print; exit }' README.md)
dcp_assert_match "$first" '^docker compose .*-f compose/compose\.yml up ' "the README's first command"
dcp_pass "the README's first command brings the bundle up"

# --- compose.yml with no .env at all, and with env.example copied as it is ----------------------------
command -v docker-compose >/dev/null || dcp_die "docker-compose is needed (scripts/install-deps.sh)"
: >"$DCP_TMP/empty.env"
for env_file in "$DCP_TMP/empty.env" env.example; do
  docker-compose --project-directory . -f compose/compose.yml --env-file "$env_file" config \
    >"$DCP_TMP/defaults.yml" 2>"$DCP_TMP/config.err" ||
    dcp_fail "compose.yml does not resolve with $env_file: $(cat "$DCP_TMP/config.err")"
  defaults=$(python3 - "$DCP_TMP/defaults.yml" <<'EOF'
import sys, yaml
stack = yaml.safe_load(open(sys.argv[1]))
proxy = stack["services"]["proxy"]
setup = stack["services"]["admin-setup"]
ports = sorted(f'{p["published"]}:{p["target"]}' for p in proxy["ports"])
print(" ".join(ports), proxy["environment"]["REGISTRY_HTTP_ADDR"],
      proxy["environment"]["DCP_TLS_ADDR"], setup["environment"]["SETUP_PROXY_URL"],
      setup["environment"]["SETUP_PROXY_TLS_URL"], setup["network_mode"],
      " ".join(sorted(v["name"] for v in stack["volumes"].values())))
EOF
  )
  dcp_assert_eq "$defaults" "5000:5000 5443:5443 :5000 :5443 http://127.0.0.1:5000 \
https://localhost:5443 service:proxy docker-cache-proxy-cache docker-cache-proxy-certs \
docker-cache-proxy-client-config docker-cache-proxy-credentials" "compose.yml's defaults with $env_file"
done
dcp_pass "compose.yml resolves with no env file and with env.example: ports 5000 and 5443, named volumes"

# --- links ------------------------------------------------------------------------------------------
for doc in README.md docs/*.md; do
  dir=$(dirname "$doc")
  while read -r target; do
    [ -e "$dir/$target" ] || dcp_fail "$doc links to $target, which does not exist"
  done < <(grep -oE '\]\([^)#]+[)#]' "$doc" | sed -E 's/^\]\(//; s/[)#]$//' | grep -v '://')
done
dcp_pass "relative links in README.md and docs/ lead to existing files"
