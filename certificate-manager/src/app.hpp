#pragma once

namespace certmgr {

/// The whole program: flags, configuration, wiring, the check loop. Returns the exit code:
/// 0 success, 64 usage, 75 a check failed (--once), 78 bad configuration, 73 setup failure;
/// with --healthcheck 0 healthy, 1 not.
int runApp(int argc, char** argv);

} // namespace certmgr
