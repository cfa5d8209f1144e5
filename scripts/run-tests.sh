#!/usr/bin/env bash
# Runs the package's Swift Testing suites straight from the test bundle that
# `scripts/swiftpm.sh --build-tests` built: scripts/run-tests.sh [--filter REGEX] [--skip REGEX] ...
#
# Not through `swift test`: that adds a SwiftPM process (and a build check) to every run, and
# SwiftPM's own process has crashed in libdispatch on this toolchain (see scripts/swiftpm.sh). The
# bundle is the same binary `swift test` runs, with the same arguments; its exit status is the
# tests' (69: no test matched the filter). Colours only on a terminal, as `swift test` does.
set -euo pipefail
swift=${SWIFT:-swift}
# SWIFT_BUILD_FLAGS may name another build folder (--scratch-path): ask SwiftPM where it is.
# shellcheck disable=SC2086
bin=$("$swift" build --show-bin-path ${SWIFT_BUILD_FLAGS:-})
bundle="$bin/StampedeCachePackageTests.xctest"
if [ ! -x "$bundle" ]; then
    echo "scripts/run-tests.sh: $bundle is not built; run: scripts/swiftpm.sh --build-tests" >&2
    exit 2
fi
[ -t 1 ] || export NO_COLOR=1
exec "$bundle" --testing-library swift-testing "$@"
