// pipecast — the command-line front end. Each subcommand lives in cmd_<name>.cpp.
#include "cli_common.hpp"

#include <exception>
#include <iostream>

int main(int argc, char** argv) {
    CLI::App app{"pipecast: sales-pipeline forecasting (weighted forecast, ideal funnel, Monte Carlo, fitting)"};
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string("pipecast ") + PIPECAST_VERSION);
    pipecast_cli::add_forecast_command(app);
    pipecast_cli::add_funnel_command(app);
    pipecast_cli::add_simulate_command(app);
    pipecast_cli::add_fit_commands(app);
    pipecast_cli::add_backtest_command(app);
    pipecast_cli::add_report_command(app);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 1; // --help and --version: 0; a bad command line is bad input: 1
    } catch (const pipecast::error& e) {
        std::cerr << "pipecast: error: " << e.what() << '\n';
        return 1;
    } catch (const std::exception& e) {
        std::cerr << "pipecast: internal error: " << e.what() << '\n';
        return 2;
    }
    return 0;
}
