#!/usr/bin/env bash
# A real OpenSearch node on this machine, from Maven Central: the minimal
# server (integ-test-zip) with the job-scheduler and security plugins, TLS
# certificates generated here, an admin password, one node on 127.0.0.1.
#
#   tests/opensearch/node.sh start   download (cached, checksums checked), install, start, wait
#   tests/opensearch/node.sh stop    stop the node started by `start`
#
# Settings (environment):
#   OPENSEARCH_PORT                   HTTP port (default 9200)
#   OPENSEARCH_INITIAL_ADMIN_PASSWORD the admin password (default below)
#   TRAILWATCH_OPENSEARCH_HOME        where it is cached and runs
#                                     (default ~/.cache/trailwatch/opensearch)
#   TRAILWATCH_OPENSEARCH_EPHEMERAL=1 `stop` also removes the node's folder
#                                     (the test suite's nodes)
#
#   tests/opensearch/node.sh fetch   only download (make test does, before the suite)
#
# Not served on Maven Central as reached here, at any 2.19.x: the anomaly
# detection, alerting and notifications plugins (see README.md).
set -euo pipefail

VERSION=2.19.4
PLUGINS=(opensearch-job-scheduler opensearch-security)
PORT=${OPENSEARCH_PORT:-9200}
PASSWORD=${OPENSEARCH_INITIAL_ADMIN_PASSWORD:-Trailwatch-Dev-2026!}
HOME_DIR=${TRAILWATCH_OPENSEARCH_HOME:-$HOME/.cache/trailwatch/opensearch}
DOWNLOADS=$HOME_DIR/downloads
NODE=$HOME_DIR/node-$VERSION-$PORT
RUN_AS=opensearch

say() { printf 'opensearch: %s\n' "$*" >&2; }

java_home() {
  if [ -n "${OPENSEARCH_JAVA_HOME:-}" ]; then echo "$OPENSEARCH_JAVA_HOME"; return; fi
  if [ -n "${JAVA_HOME:-}" ]; then echo "$JAVA_HOME"; return; fi
  dirname "$(dirname "$(readlink -f "$(command -v java)")")"
}

fetch() { # group:artifact:version:zip -> the zip's path; Maven checks checksums (-C)
  local coords=$1 artifact version
  artifact=$(echo "$coords" | cut -d: -f2)
  version=$(echo "$coords" | cut -d: -f3)
  local zip=$DOWNLOADS/$artifact-$version.zip
  if [ ! -s "$zip" ]; then
    say "downloading $coords"
    mkdir -p "$DOWNLOADS"
    mvn -q -B -C dependency:copy -Dartifact="$coords" -DoutputDirectory="$DOWNLOADS" >&2 ||
      { say "cannot download $coords from Maven Central"; exit 1; }
  fi
  echo "$zip"
}

certificates() { # a CA, the node's certificate (localhost, 127.0.0.1) and the admin's
  local dir=$1
  mkdir -p "$dir"
  cd "$dir"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout root-ca-key.pem -out root-ca.pem -days 825 \
    -subj "/O=trailwatch/CN=trailwatch test CA" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -keyout node-key.pem -out node.csr \
    -subj "/O=trailwatch/CN=localhost" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' > node.ext
  openssl x509 -req -in node.csr -CA root-ca.pem -CAkey root-ca-key.pem -CAcreateserial \
    -out node.pem -days 825 -extfile node.ext 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -keyout admin-key.pem -out admin.csr \
    -subj "/O=trailwatch/CN=trailwatch-admin" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\n' > admin.ext
  openssl x509 -req -in admin.csr -CA root-ca.pem -CAkey root-ca-key.pem -CAcreateserial \
    -out admin.pem -days 825 -extfile admin.ext 2>/dev/null
  rm -f ./*.csr ./*.ext ./*.srl
  cd - >/dev/null
}

install() {
  local core
  core=$(fetch "org.opensearch.distribution.integ-test-zip:opensearch:$VERSION:zip")
  local zips=()
  for p in "${PLUGINS[@]}"; do zips+=("$(fetch "org.opensearch.plugin:$p:$VERSION.0:zip")"); done
  # The marker names the configuration's version: a node installed with an
  # older one is configured again.
  if [ -f "$NODE/.installed-2" ]; then return; fi
  say "installing OpenSearch $VERSION with ${PLUGINS[*]} into $NODE"
  rm -rf "$NODE" && mkdir -p "$NODE"
  unzip -q "$core" -d "$NODE.tmp" && mv "$NODE.tmp"/opensearch-*/* "$NODE"/ && rm -rf "$NODE.tmp"
  export JAVA_HOME; JAVA_HOME=$(java_home)
  for z in "${zips[@]}"; do "$NODE/bin/opensearch-plugin" install --batch "file://$z" >/dev/null; done
  certificates "$NODE/config/certs"
  local hash
  hash=$(bash "$NODE/plugins/opensearch-security/tools/hash.sh" -p "$PASSWORD" 2>/dev/null | tail -1)
  cat > "$NODE/config/opensearch-security/internal_users.yml" <<USERS
_meta:
  type: "internalusers"
  config_version: 2
admin:
  hash: "$hash"
  reserved: true
  backend_roles: ["admin"]
  description: "trailwatch test admin"
USERS
  cat >> "$NODE/config/opensearch.yml" <<CONFIG
cluster.name: trailwatch-test
node.name: trailwatch-test-0
network.host: 127.0.0.1
http.port: $PORT
transport.port: $((PORT + 100))
discovery.type: single-node
plugins.security.ssl.transport.pemcert_filepath: certs/node.pem
plugins.security.ssl.transport.pemkey_filepath: certs/node-key.pem
plugins.security.ssl.transport.pemtrustedcas_filepath: certs/root-ca.pem
plugins.security.ssl.transport.enforce_hostname_verification: false
plugins.security.ssl.http.enabled: true
plugins.security.ssl.http.pemcert_filepath: certs/node.pem
plugins.security.ssl.http.pemkey_filepath: certs/node-key.pem
plugins.security.ssl.http.pemtrustedcas_filepath: certs/root-ca.pem
plugins.security.allow_default_init_securityindex: true
plugins.security.authcz.admin_dn: ["CN=trailwatch-admin,O=trailwatch"]
plugins.security.nodes_dn: ["CN=localhost,O=trailwatch"]
plugins.security.restapi.roles_enabled: ["all_access", "security_rest_api_access"]
plugins.security.system_indices.enabled: true
# As the official distribution's: a weak internal-user password is refused.
plugins.security.restapi.password_min_length: 8
CONFIG
  touch "$NODE/.installed-2"
}

start() {
  install
  if [ "$(id -u)" = 0 ]; then
    id -u "$RUN_AS" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$RUN_AS"
    chown -R "$RUN_AS" "$NODE"
    # The cache's parents must be reachable by that user.
    local d=$NODE
    while [ "$d" != / ]; do d=$(dirname "$d"); chmod o+x "$d" 2>/dev/null || true; done
  fi
  if curl -s -o /dev/null --max-time 2 "https://127.0.0.1:$PORT" -k; then
    say "something already answers on 127.0.0.1:$PORT"
  else
    say "starting on 127.0.0.1:$PORT"
    local runner=(env)
    [ "$(id -u)" = 0 ] && runner=(runuser -u "$RUN_AS" -- env)
    "${runner[@]}" JAVA_HOME="$(java_home)" OPENSEARCH_JAVA_OPTS="-Xms512m -Xmx512m" \
      "$NODE/bin/opensearch" -d -p "$NODE/opensearch.pid" >"$NODE/start.log" 2>&1
  fi
  local waited=0
  until curl -s --max-time 2 --cacert "$NODE/config/certs/root-ca.pem" -u "admin:$PASSWORD" \
      "https://127.0.0.1:$PORT/_cluster/health" | grep -q '"status"'; do
    if [ "$waited" -ge 180 ]; then
      say "no answer after ${waited} s; the log: $NODE/logs/trailwatch-test.log"
      tail -20 "$NODE/logs/trailwatch-test.log" >&2 || true
      exit 1
    fi
    [ $((waited % 10)) = 0 ] && say "waiting for the node (${waited} s)"
    sleep 1; waited=$((waited + 1))
  done
  cat <<READY
OpenSearch $VERSION is up:
  url:      https://127.0.0.1:$PORT
  user:     admin
  password: $PASSWORD
  CA:       $NODE/config/certs/root-ca.pem
  plugins:  ${PLUGINS[*]}
  lacks:    anomaly detection, alerting, notifications and index state
            management (Maven Central does not serve them), so
            'trailwatch opensearch apply' stops at "the index state
            management (ISM) plugin is not installed". For a node with every
            plugin and OpenSearch Dashboards, use the Compose stack:
            README.md, "A stack on your own machine" (docker compose up).
READY
}

stop() {
  local pid=$NODE/opensearch.pid
  if [ -s "$pid" ] && kill "$(cat "$pid")" 2>/dev/null; then
    local n=0
    while kill -0 "$(cat "$pid" 2>/dev/null)" 2>/dev/null && [ $n -lt 30 ]; do sleep 1; n=$((n + 1)); done
    say "stopped the node on 127.0.0.1:$PORT"
  else
    say "no node of ours on 127.0.0.1:$PORT"
  fi
  if [ "${TRAILWATCH_OPENSEARCH_EPHEMERAL:-}" = 1 ]; then rm -rf "$NODE"; fi
}

fetch_all() {
  fetch "org.opensearch.distribution.integ-test-zip:opensearch:$VERSION:zip" >/dev/null
  for p in "${PLUGINS[@]}"; do fetch "org.opensearch.plugin:$p:$VERSION.0:zip" >/dev/null; done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  fetch) fetch_all ;;
  *) echo "usage: $0 start|stop|fetch" >&2; exit 2 ;;
esac
