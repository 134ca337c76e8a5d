// pipecast funnel — placeholder until its issue lands (registers nothing yet).
#include "cli_common.hpp"

namespace pipecast_cli {
void add_funnel_command(CLI::App&) {}
} // namespace pipecast_cli
