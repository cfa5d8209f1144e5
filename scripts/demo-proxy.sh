#!/usr/bin/env bash
# `make demo-proxy`: starts `stampede serve --demo` (a private redis-server, a simulated upstream,
# the virtual key sk-demo) and drives it with the official openai Python package: a herd of 16
# identical questions from 4 processes, a streamed answer and its replay, embeddings computed then
# served from the cache, and the metrics. Stops everything after.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=.build/release/stampede
openai=$(scripts/ensure-openai-python.sh)
port=${STAMPEDE_PORT:-8080}
log=$(mktemp)
"$binary" serve --demo --port "$port" >"$log" 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 200); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    kill -0 $server 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.1
done
base="http://127.0.0.1:$port/v1"
client=Tests/ProxyClients/openai_client.py
echo "stampede serve --demo is listening on $base (virtual key sk-demo)"
echo
echo "1. 4 processes x 4 threads ask the same new question at once (the upstream takes 800 ms):"
for _ in 1 2 3 4; do PYTHONPATH=$openai python3 $client herd "$base" sk-demo "Why do caches stampede?" 4 & done | python3 -c '
import json, sys, collections
answers = [a for line in sys.stdin for a in json.loads(line)]
print("   %d answers, %d distinct; Cache-Status: %s" % (len(answers), len({a.get("content") for a in answers}),
      dict(collections.Counter(a.get("cache_status") for a in answers))))'
echo
echo "2. A streamed answer, then the same question again (replayed from the cache):"
for attempt in first second; do
    PYTHONPATH=$openai python3 $client stream "$base" sk-demo "Stream a short answer" | python3 -c '
import json, sys
r = json.load(sys.stdin)
print("   '"$attempt"': %d pieces, first after %.0f ms, source %s" % (len(r["pieces"]), r["pieces"][0]["t"] * 1000, r["stampede"]["source"]))'
done
echo
echo "3. Embeddings for two texts, twice (the second time from the cache):"
for attempt in first second; do
    PYTHONPATH=$openai python3 $client embed "$base" sk-demo "How do I reset my password?|Where is my invoice?" | python3 -c '
import json, sys
r = json.load(sys.stdin)
print("   '"$attempt"': %d vectors of %d dimensions; Cache-Status: %s" % (len(r["vectors"]), len(r["vectors"][0]), r["cache_status"]))'
done
echo
echo "4. The proxy's metrics (curl http://127.0.0.1:$port/metrics):"
curl -fsS "http://127.0.0.1:$port/metrics" | grep -E '^(stampede_proxy_requests_total|llmcache_upstream_calls_total|llmcache_hits_total|llmcache_money_saved_usd_total)' | sed 's/^/   /'
