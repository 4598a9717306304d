#!/usr/bin/env bash
# Starts a musterd on 127.0.0.1 (a port of its choosing, a fresh data
# directory) and runs consul_client_test.js against its Consul API with Node's
# consul package; stops musterd on every way out. Prints musterd's log when
# anything failed.
# Usage: run.sh MUSTERD_PATH
# Needs node and tests/consul-client/node_modules (make consul-client-deps;
# make test runs it).
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 MUSTERD_PATH" >&2
  exit 2
fi
musterd=$1
here=$(cd "$(dirname "$0")" && pwd)

fail() {
  echo "consul-client: $*" >&2
  exit 1
}
[ -x "$musterd" ] || fail "musterd is not an executable: $musterd"
command -v node >/dev/null 2>&1 ||
  fail "node is not installed (scripts/install-deps.sh installs it; make test runs that)"
[ -f "$here/node_modules/consul/package.json" ] ||
  fail "the consul package is not installed in $here/node_modules: run 'make consul-client-deps' (part of make test)"

work=$(mktemp -d)
log=$work/musterd.log
pid=
node_pid=

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$node_pid" ] && kill -0 "$node_pid" 2>/dev/null; then
    kill -TERM "$node_pid" 2>/dev/null || true
    wait "$node_pid" 2>/dev/null || true
  fi
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "consul-client: musterd did not stop in 5 s after SIGTERM; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  fi
  if [ "$rc" -ne 0 ] && [ -f "$log" ]; then
    echo "---- musterd log ($log) ----" >&2
    cat "$log" >&2
    echo "---- end of musterd log ----" >&2
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$musterd" --listen 127.0.0.1:0 --xds-listen 127.0.0.1:0 --data-dir "$work/data" >"$log" 2>&1 &
pid=$!

# musterd logs "musterd listening on 127.0.0.1:PORT (N I/O threads)" once bound.
address=
for _ in $(seq 300); do
  address=$(sed -n 's/.*musterd listening on \(127\.0\.0\.1:[0-9][0-9]*\).*/\1/p' "$log" | head -n 1)
  [ -n "$address" ] && break
  kill -0 "$pid" 2>/dev/null || fail "musterd exited before it listened"
  sleep 0.1
done
[ -n "$address" ] || fail "musterd did not log 'musterd listening on 127.0.0.1:PORT' within 30 s"
echo "consul-client: musterd (pid $pid) listening on $address"

cd "$here"
# In the background, so that a signal to this script stops it at once.
MUSTER_ADDRESS=$address node --test --test-reporter=spec consul_client_test.js &
node_pid=$!
test_rc=0
wait "$node_pid" || test_rc=$?
node_pid=

kill -0 "$pid" 2>/dev/null || fail "musterd is no longer running after the tests"
[ "$test_rc" -eq 0 ] || fail "consul_client_test.js failed (exit $test_rc)"
echo "consul-client: all Consul client tests passed"
