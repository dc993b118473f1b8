#pragma once

namespace admin {

/// The whole program: flags, configuration, the six steps, the report, the exit code.
int runApp(int argc, char** argv);

} // namespace admin
