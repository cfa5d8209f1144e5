# StampedeCache: the two commands a newcomer needs.
#   make demo   the main job (with no REDIS_URL, a private redis-server is started and stopped for you)
#   make test   every test: unit, integration against real redis-server processes, Lua script contracts
# Both install missing Debian packages first (scripts/ensure-deps.sh).

SWIFT ?= swift
SWIFT_BUILD_FLAGS ?=

.PHONY: deps demo bench test test-swift test-lua build release clean

deps:
	@scripts/ensure-deps.sh

build: deps
	$(SWIFT) build $(SWIFT_BUILD_FLAGS)

release: deps
	$(SWIFT) build -c release --product stampede $(SWIFT_BUILD_FLAGS)

# The main job: a simulated fleet calling an LLM through LLMCache, compared with cache-aside.
demo: release
	.build/release/stampede demo $(ARGS)

bench: release
	.build/release/stampede bench client $(ARGS)
	.build/release/stampede bench cache $(ARGS)

test: deps test-lua test-swift

# The chaos suite (worker processes, fault injection) and the bench compare / tune smoke runs go
# after the other suites, not alongside them, so their load does not distort the others' timing on
# a 2-core machine (and theirs).
test-swift:
	$(SWIFT) test $(SWIFT_BUILD_FLAGS) --skip 'ChaosTests|BenchToolsTests'
	$(SWIFT) test $(SWIFT_BUILD_FLAGS) --filter ChaosTests
	$(SWIFT) test $(SWIFT_BUILD_FLAGS) --filter BenchToolsTests


test-lua:
	python3 LuaScripts/verify_scripts.py
	STAMPEDE_VERIFY_CLUSTER=1 python3 LuaScripts/verify_scripts.py

clean:
	rm -rf .build
