// pipecast command-line tool — shared helpers of the subcommands.
#pragma once

#include <pipecast/pipecast.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace pipecast_cli {

/// Registers one subcommand each; defined in cmd_<name>.cpp.
void add_forecast_command(CLI::App& app);
void add_funnel_command(CLI::App& app);
void add_simulate_command(CLI::App& app);
void add_fit_commands(CLI::App& app); // fit and kpi
void add_backtest_command(CLI::App& app);

/// A text table with right-aligned numeric columns, printed with column widths fitted
/// to the content.
class table {
public:
    explicit table(std::vector<std::string> header) : header_(std::move(header)) {}
    void add_row(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
    void add_rule() { rows_.emplace_back(); }
    void print(std::ostream& os) const {
        std::vector<std::size_t> w(header_.size(), 0);
        for (std::size_t c = 0; c < header_.size(); ++c) w[c] = header_[c].size();
        for (const auto& r : rows_)
            for (std::size_t c = 0; c < r.size() && c < w.size(); ++c) w[c] = std::max(w[c], r[c].size());
        auto line = [&](const std::vector<std::string>& r) {
            for (std::size_t c = 0; c < w.size(); ++c) {
                const std::string& cell = c < r.size() ? r[c] : std::string();
                if (c) os << "  ";
                if (c == 0) os << std::left << std::setw(static_cast<int>(w[c])) << cell;
                else os << std::right << std::setw(static_cast<int>(w[c])) << cell;
            }
            os << '\n';
        };
        std::size_t total = 0;
        for (auto x : w) total += x + 2;
        line(header_);
        os << std::string(total - 2, '-') << '\n';
        for (const auto& r : rows_) {
            if (r.empty()) os << std::string(total - 2, '-') << '\n';
            else line(r);
        }
    }

private:
    std::vector<std::string> header_;
    std::vector<std::vector<std::string>> rows_;
};

/// 1234567.891 -> "1,234,568" (money, no decimals).
inline std::string money(double v) {
    if (!std::isfinite(v)) return std::isnan(v) ? "n/a" : (v > 0 ? "inf" : "-inf");
    const bool neg = v < 0;
    auto n = static_cast<long long>(std::llround(std::abs(v)));
    std::string digits = std::to_string(n), out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return neg ? "-" + out : out;
}

/// Fixed-point number with `decimals` digits.
inline std::string fixed(double v, int decimals = 2) {
    if (!std::isfinite(v)) return std::isnan(v) ? "n/a" : (v > 0 ? "inf" : "-inf");
    std::ostringstream os;
    os << std::fixed << std::setprecision(decimals) << v;
    return os.str();
}

/// 0.4567 -> "45.7%".
inline std::string percent(double p, int decimals = 1) { return std::isfinite(p) ? fixed(100.0 * p, decimals) + "%" : "n/a"; }

/// Prints JSON to stdout (indent 2).
inline void print_json(const nlohmann::json& j) { std::cout << j.dump(2) << '\n'; }

/// Loads a model file (wrapping errors with the file name).
inline pipecast::model load_model_file(const std::string& path) { return pipecast::load_model(path); }

} // namespace pipecast_cli
