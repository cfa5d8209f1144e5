#ifndef STAMPEDE_CHIREDIS_SHIM_H
#define STAMPEDE_CHIREDIS_SHIM_H

// hiredis 0.14 (Debian's libhiredis-dev): RESP2 only. We use its reply reader
// (redisReader). Its command formatter (redisFormatCommandArgv) is the oracle the
// tests compare our RESPEncoder with; the blocking context API is used only by
// the benchmark's baseline loop.
#include <hiredis/hiredis.h>
#include <hiredis/read.h>

#endif
