// pipecast fit / kpi — placeholder until its issue lands (registers nothing yet).
#include "cli_common.hpp"

namespace pipecast_cli {
void add_fit_commands(CLI::App&) {}
} // namespace pipecast_cli
