// pipecast — the command-line front end. Each subcommand lives in cmd_<name>.cpp.
#include "cli_common.hpp"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

namespace {

/// Levenshtein distance (insertions, deletions, substitutions; bytes).
std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diag = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diag = up;
        }
    }
    return row[b.size()];
}

/// An unknown first word ("pipecast forcast"): "unknown command 'forcast'; did you mean
/// forecast?" (the nearest command within a third of its length, at least 2 edits), else the
/// list of commands. Empty when `word` is a command or an option.
std::string unknown_command_message(const CLI::App& app, std::string_view word) {
    if (word.empty() || word.front() == '-') return {};
    std::vector<std::string> names;
    for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) names.push_back(sub->get_name());
    if (std::find(names.begin(), names.end(), word) != names.end()) return {};
    std::string best;
    std::size_t best_d = std::string::npos;
    for (const auto& n : names)
        if (const std::size_t d = edit_distance(word, n); d < best_d) best_d = d, best = n;
    std::string msg = "unknown command '";
    msg += word;
    msg += "'";
    if (!best.empty() && best_d <= std::max<std::size_t>(2, best.size() / 3)) {
        msg += "; did you mean ";
        msg += best;
        msg += "?";
    } else {
        msg += "; the commands are";
        for (const auto& n : names) {
            msg += " ";
            msg += n;
        }
    }
    return msg;
}

/// The command line run: main() without its last-resort catch.
int run(int argc, char** argv) {
    CLI::App app{"pipecast: sales-pipeline forecasting (weighted forecast, ideal funnel, Monte Carlo, fitting)"};
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string("pipecast ") + PIPECAST_VERSION);
    pipecast_cli::add_forecast_command(app);
    pipecast_cli::add_funnel_command(app);
    pipecast_cli::add_simulate_command(app);
    pipecast_cli::add_fit_commands(app);
    pipecast_cli::add_backtest_command(app);
    pipecast_cli::add_report_command(app);
    pipecast_cli::add_sweep_command(app);
    try {
        if (argc > 1) { // a misspelt command: the nearest one named (CLI11 would only say it was not expected)
            if (const std::string bad = unknown_command_message(app, argv[1]); !bad.empty()) {
                std::cerr << "pipecast: error: " << bad << "\n(pipecast --help lists them)\n";
                return 1;
            }
        }
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

} // namespace

int main(int argc, char** argv) {
    // Setting up the commands (CLI::App, add_option) can throw too, outside run()'s handlers:
    // caught here, so that no exception leaves main (clang-tidy bugprone-exception-escape).
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "pipecast: internal error: %s\n", e.what());
    } catch (...) {
        std::fputs("pipecast: internal error\n", stderr);
    }
    return 2;
}
