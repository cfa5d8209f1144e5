#!/usr/bin/env bash
# Runs `swift build ARGS...` and, only if SwiftPM itself dies of a signal, runs it once more.
#
# Why: on Linux the toolchain's own swift-build/swift-test processes have crashed in libdispatch
# (`_dispatch_event_loop_drain`, a SIGSEGV on the EPOLLHUP path, with the 75 shared objects a
# SwiftPM process maps, not the 27 of our test bundle). A build is idempotent, so running it again
# is safe; a compile error (exit status 1) is never retried. Tests are not run through SwiftPM at
# all: scripts/run-tests.sh runs the built test bundle directly.
set -uo pipefail
swift=${SWIFT:-swift}
"$swift" build "$@"
status=$?
if [ "$status" -gt 128 ]; then
    echo "scripts/swiftpm.sh: swift build died of signal $((status - 128)) (a crash of SwiftPM, not a build error); running it once more" >&2
    "$swift" build "$@"
    status=$?
fi
exit "$status"
