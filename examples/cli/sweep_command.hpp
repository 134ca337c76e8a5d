// pipecast sweep — what the threaded command (cmd_sweep.cpp, `pipecast sweep`) and the MPI
// program (examples/mpi/sweep_mpi.cpp, `pipecast-sweep-mpi`) share: the options, the loading
// and checking of the inputs, and the report (table or JSON). Both print the same report for
// the same inputs and seed: the scenarios' numbers are bit-identical (docs/sweep.md).
//
// Self-contained (no cli_common.hpp): the MPI program includes only what it needs.
#pragma once

#include <pipecast/io/book_csv.hpp>
#include <pipecast/io/model_json.hpp>
#include <pipecast/io/results_json.hpp>
#include <pipecast/simulation/sweep.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iomanip>
#include <limits>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

namespace pipecast_sweep_cli {

struct sweep_args {
    std::string model_path, deals_path, scenarios_path;
    double horizon = 0.0;
    std::size_t paths = 10000;
    std::uint64_t seed = 1;
    std::vector<double> quotas;
    unsigned threads = 0;
    bool no_arrivals = false;
    bool json = false;
    std::optional<std::string> as_of; ///< --as-of: the date deal ages are measured to (a book with an 'entered' column)
};

/// Registers the options of a sweep on `cmd`.
inline void add_sweep_options(CLI::App* cmd, sweep_args& a) {
    cmd->add_option("--model", a.model_path, "model JSON file")->required();
    cmd->add_option("--deals", a.deals_path, "open deals CSV (the book)")->required();
    cmd->add_option("--scenarios", a.scenarios_path,
                    "scenarios JSON: {\"scenarios\": [{\"name\": \"base\"}, {\"name\": \"faster\", \"dwell_scale\": 0.8}, ...]}")
        ->required();
    cmd->add_option("--horizon", a.horizon, "count wins up to this time (model time unit, e.g. 90)")->required();
    cmd->add_option("--paths", a.paths, "Monte Carlo paths per scenario")
        ->capture_default_str()
        ->check(CLI::Range(std::size_t{1}, std::size_t{0xFFFFFFFFull}));
    cmd->add_option("--seed", a.seed, "random seed (the same for every scenario: common random numbers)")->capture_default_str();
    cmd->add_option("--quota", a.quotas, "report P(won value >= Q) (repeatable)");
    cmd->add_option("--threads", a.threads, "worker threads (0 = all cores)")
        ->capture_default_str()
        ->check(CLI::Range(0u, 4096u));
    cmd->add_flag("--no-arrivals", a.no_arrivals, "leave out the model's arrival process (book deals only)");
    cmd->add_flag("--json", a.json, "JSON output");
    cmd->add_option("--as-of", a.as_of, "Date (YYYY-MM-DD) ages are measured to, for a deals file with an 'entered' column");
}

/// The book reader's options of a sweep: the source name, and with --as-of the date a book's
/// 'entered' column is measured to (as forecast and simulate).
inline pipecast::book_csv_options book_options_of(const sweep_args& a, const pipecast::model& m) {
    pipecast::book_csv_options opt;
    opt.source = a.deals_path;
    opt.as_of = a.as_of;
    opt.days_per_unit = pipecast::days_per_unit(m.time_unit);
    return opt;
}

/// The sweep's options from the command line.
inline pipecast::sweep_options options_of(const sweep_args& a) {
    if (!(std::isfinite(a.horizon) && a.horizon > 0.0))
        throw pipecast::argument_error(pipecast::detail::message("sweep: --horizon must be positive and finite, got ", a.horizon));
    for (double q : a.quotas)
        if (!(std::isfinite(q) && q >= 0.0))
            throw pipecast::argument_error(pipecast::detail::message("sweep: --quota must be finite and >= 0, got ", q));
    pipecast::sweep_options o;
    o.paths = a.paths;
    o.horizon = a.horizon;
    o.seed = a.seed;
    o.threads = a.threads;
    o.quotas = a.quotas;
    o.model_arrivals = !a.no_arrivals;
    return o;
}

/// 1234567.8 -> "1,234,568"; large magnitudes in scientific notation.
inline std::string amount(double v) {
    if (!std::isfinite(v)) return "n/a";
    std::ostringstream os;
    if (std::abs(v) >= 1e15) {
        os << std::setprecision(3) << std::scientific << v;
        return os.str();
    }
    const long long x = std::llround(std::abs(v));
    std::string digits = std::to_string(x), out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return (v < 0 && x != 0 ? "-" : "") + out;
}
inline std::string signed_amount(double v) { return std::isfinite(v) && v > 0 && std::llround(v) != 0 ? "+" + amount(v) : amount(v); }
inline std::string percent(double p) {
    if (!std::isfinite(p)) return "n/a";
    std::ostringstream os;
    os << std::fixed << std::setprecision(1) << 100.0 * p << '%';
    return os.str();
}

inline std::string changes_text(const pipecast::scenario& s) {
    std::ostringstream os;
    auto item = [&](const std::string& k, double v) { os << (os.tellp() > 0 ? ", " : "") << k << ' ' << v; };
    if (s.dwell_scale != 1.0) item("dwell x", s.dwell_scale);
    if (s.win_odds_scale != 1.0) item("win odds x", s.win_odds_scale);
    if (s.arrival_scale != 1.0) item("arrivals x", s.arrival_scale);
    if (s.deal_size_scale != 1.0) item("deal size x", s.deal_size_scale);
    for (const auto& [name, v] : s.stages) {
        if (v.dwell_scale) item(name + " dwell x", *v.dwell_scale);
        if (v.win_odds_scale) item(name + " win odds x", *v.win_odds_scale);
    }
    const std::string t = os.str();
    return t.empty() ? "(none)" : t;
}

/// Where and how long it ran (not part of the results: differs between runs).
struct run_info {
    double wall_seconds = 0.0;
    int processes = 1;
    unsigned threads = 0;
};

/// The report as JSON. The "scenarios" array is the result: bit-identical between the
/// threaded and the MPI runs; "elapsed_seconds" (wall, inputs read to report), "piece_seconds"
/// (the pieces' wall times summed over the processes), "processes" and "threads" say how it ran.
inline nlohmann::ordered_json sweep_json(const pipecast::sweep& sw, const pipecast::sweep_result& r,
                                         const pipecast::model& m, const run_info& info) {
    return pipecast::sweep_document{sw, r, m, info.wall_seconds, info.processes, info.threads}; // results_json.hpp
}

/// The report as a table.
inline void print_sweep(std::ostream& os, const pipecast::sweep& sw, const pipecast::sweep_result& r,
                        const pipecast::model& m, const run_info& info) {
    const std::string cur = m.currency.empty() ? std::string() : " " + m.currency;
    os << "Scenario sweep: " << r.scenarios.size() << " scenarios x " << r.paths << " paths, " << r.deals
       << " open deals" << (sw.options().model_arrivals && m.arrivals ? " and new arrivals" : "") << ", horizon "
       << r.horizon << ' ' << m.time_unit << (r.horizon == 1 ? "" : "s") << ", seed " << r.seed << '\n'
       << "Won value within the horizon" << cur << "; 'vs base' is the mean of the path-by-path difference to '"
       << sw.scenarios()[r.base].name << "' (common random numbers) and its standard error.\n\n";
    std::vector<std::string> header = {"scenario", "mean", "p10", "p50", "p90"};
    for (double q : sw.options().quotas) header.push_back("P(>=" + amount(q) + ")");
    for (const char* h : {"vs base", "+/- se", "won deals", "changes"}) header.emplace_back(h);
    std::vector<std::vector<std::string>> rows;
    for (std::size_t i = 0; i < r.scenarios.size(); ++i) {
        const pipecast::scenario_result& s = r.scenarios[i];
        std::vector<std::string> row = {s.name, amount(s.won_value.mean)};
        for (std::size_t q = 0; q < 3; ++q) row.push_back(amount(s.won_value.quantiles[q]));
        for (double p : s.won_value.p_quota) row.push_back(percent(p));
        row.push_back(i == r.base ? "base" : signed_amount(s.difference.mean));
        row.push_back(i == r.base ? "" : amount(s.difference.standard_error));
        std::ostringstream c;
        c << std::fixed << std::setprecision(1) << s.won_count.mean;
        row.push_back(c.str());
        row.push_back(changes_text(sw.scenarios()[i]));
        rows.push_back(std::move(row));
    }
    std::vector<std::size_t> w(header.size());
    for (std::size_t c = 0; c < header.size(); ++c) w[c] = header[c].size();
    for (const auto& row : rows)
        for (std::size_t c = 0; c < row.size(); ++c) w[c] = std::max(w[c], row[c].size());
    auto line = [&](const std::vector<std::string>& row) {
        std::string out;
        for (std::size_t c = 0; c < row.size(); ++c) {
            const bool left = c == 0 || c + 1 == row.size();
            std::string cell = row[c];
            const std::string pad(w[c] - cell.size(), ' ');
            if (c) out += "  ";
            out += left ? cell + (c + 1 == row.size() ? "" : pad) : pad + cell;
        }
        os << out << '\n';
    };
    line(header);
    std::size_t total = 0;
    for (std::size_t x : w) total += x + 2;
    os << std::string(total - 2, '-') << '\n';
    for (const auto& row : rows) line(row);
    std::uint64_t capped = 0;
    for (const auto& s : r.scenarios) capped += s.capped_deal_paths;
    if (capped) os << "\nWarning: " << capped << " deal-paths stopped at the visit cap (counted as not won).\n";
    os << "\nComputed in " << std::fixed << std::setprecision(3) << info.wall_seconds << " s (" << info.processes
       << (info.processes == 1 ? " process" : " processes") << ")\n";
}

/// Prints the report as the arguments say.
inline void report(std::ostream& os, const pipecast::sweep& sw, const pipecast::sweep_result& r,
                   const pipecast::model& m, const sweep_args& a, const run_info& info) {
    if (a.json) os << sweep_json(sw, r, m, info).dump(2) << '\n';
    else print_sweep(os, sw, r, m, info);
}

} // namespace pipecast_sweep_cli
