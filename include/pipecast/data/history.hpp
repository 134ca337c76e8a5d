// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file data/history.hpp
/// @brief Deal history: a table of stage visits read from a CRM export, the input of the
/// estimator (estimation.hpp) and the KPIs (kpi.hpp).
///
/// Two export formats are read, columns found by (case-insensitive) header name:
///
///  * the **visit log**, one row per stage visit:
///    `deal_id, stage, entered, exited, next_stage[, amount][, extra columns...]`.
///    Empty `exited` and `next_stage` mark a visit still open at the end of the log: it is
///    **right-censored** at the log end (the `as_of` option, else the latest time in the file);
///  * the **stage-change log**, one row per stage change: `deal_id, stage, changed_at[, amount]`.
///    The rows of one deal, in time order, are turned into visits: row k opens a visit in
///    its stage that row k+1 closes (its stage being the next stage); a final row in an
///    outcome stage only closes the previous visit; the last visit of a deal still in an
///    open stage is censored at the log end.
///
/// Times are plain numbers (already in the model time unit) or ISO-8601 dates, converted to
/// days since 1970-01-01 and divided by `days_per_unit`; a file must not mix the two.
/// Extra columns (owner, team, region, ...) are kept, dictionary-encoded, for segment fits.
///
/// Validation: a malformed row, a visit that ends before it starts, an exit time without a
/// next stage (or the reverse), overlapping visits of one deal, a next stage that does not
/// match the deal's next visit (or an open stage the deal never visits), a visit after an
/// outcome, an unknown stage when the stage names are given: each throws parse_error with
/// file:line:column. With `skip_bad_rows` the bad row is skipped and recorded in
/// `visit_log::skipped` instead; a problem between two rows of a deal skips all the deal's
/// rows (each recorded): nothing is dropped silently.

#include <pipecast/detail/amounts.hpp>
#include <pipecast/detail/csv.hpp>
#include <pipecast/detail/dates.hpp>
#include <pipecast/error.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <istream>
#include <limits>
#include <numeric>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace pipecast {

/// A row that `skip_bad_rows` skipped: its line and the error it would have raised.
struct skipped_row {
    std::size_t line = 0;
    std::string reason;
};

/// An exchange rate: one unit of `currency` is `rate` units of the report currency, from
/// `date` on (days since 1970-01-01; NaN: always).
struct fx_rate {
    std::string currency;
    double rate = 1.0;
    double date = std::numeric_limits<double>::quiet_NaN();
};

/// Reads exchange rates: CSV `currency,rate[,date]` (header names; ISO or the recognised date
/// forms; codes or symbols such as $ or ¥).
/// @throws parse_error naming source:line:column for a missing column, an empty or unknown
///   currency, a rate that is not a positive finite number, a bad date, a duplicate entry.
template <class = void>
[[nodiscard]] std::vector<fx_rate> read_fx_rates(std::istream& in, const std::string& source = "<stream>") {
    detail::csv_reader csv(in, source, detail::csv_dialect{0, true, std::size_t{1} << 20});
    std::vector<std::string> f;
    if (!csv.next(f)) throw parse_error(source, 0, 0, "empty file: expected a header line (currency,rate[,date])");
    const detail::csv_header h(f);
    const auto c_cur = h.find({"currency", "code", "currency_code"});
    const auto c_rate = h.find({"rate", "fx", "rate_to_report"});
    const auto c_date = h.find({"date", "from", "valid_from"});
    if (!c_cur || !c_rate) throw parse_error(source, csv.line(), 0, "expected the columns currency,rate[,date]");
    std::vector<fx_rate> out;
    while (csv.next(f)) {
        const std::size_t line = csv.line();
        if (f.size() != h.size())
            throw parse_error(source, line, 0, detail::message("expected ", h.size(), " fields, got ", f.size()));
        fx_rate r;
        r.currency = detail::currency_code_of(f[*c_cur]);
        if (r.currency.empty()) throw parse_error(source, line, *c_cur + 1, "column 'currency': empty currency");
        const auto rate = detail::parse_number(f[*c_rate], source, line, *c_rate + 1, "rate");
        if (!rate || !(*rate > 0.0))
            throw parse_error(source, line, *c_rate + 1, detail::message("column 'rate': expected a positive rate, got '", detail::clip(f[*c_rate]), "'"));
        r.rate = *rate;
        if (c_date && !detail::trim(f[*c_date]).empty()) {
            bool is_date = false;
            r.date = *detail::parse_time_field(f[*c_date], {}, source, line, *c_date + 1, "date", &is_date);
            if (!is_date) throw parse_error(source, line, *c_date + 1, "column 'date': expected a date");
        }
        for (const auto& o : out)
            if (o.currency == r.currency && (o.date == r.date || (std::isnan(o.date) && std::isnan(r.date))))
                throw parse_error(source, line, *c_cur + 1, detail::message("duplicate rate for ", r.currency));
        out.push_back(r);
    }
    return out;
}

namespace detail {
/// The rate of `currency` at `day` (days since 1970-01-01; NaN: the latest): the latest rate
/// dated on or before it, else the undated one. nullopt when there is none.
template <class = void>
[[nodiscard]] std::optional<double> fx_rate_at(const std::vector<fx_rate>& rates, std::string_view currency, double day) {
    std::optional<double> undated, best;
    double best_date = -std::numeric_limits<double>::infinity();
    for (const auto& r : rates) {
        if (r.currency != currency) continue;
        if (std::isnan(r.date)) undated = r.rate;
        else if ((std::isnan(day) || r.date <= day) && r.date >= best_date) best = r.rate, best_date = r.date;
    }
    return best ? best : undated;
}
} // namespace detail

/// Options of the history readers.
struct history_options {
    /// Name used in error messages (the file name).
    std::string source = "<stream>";
    /// Record and skip bad rows instead of throwing.
    bool skip_bad_rows = false;
    /// Length of the model time unit in days: dates become days / days_per_unit.
    double days_per_unit = 1.0;
    /// Censoring time of the visits still open: a number or an ISO-8601 date (the same kind
    /// as the file's times). Default: the latest time in the log. Times after it are errors.
    std::optional<std::string> as_of;
    /// Known open stages (optional). When given, a stage or next stage that is neither one
    /// of them nor an outcome is an error, and these stages are open even if never left.
    std::vector<std::string> stages;
    /// Known outcome (absorbing) stages (optional). When empty they are inferred: next stages
    /// never visited (visit log) or stages no deal ever leaves (stage-change log).
    std::vector<std::string> outcomes;

    // --- reading CRM exports (see crm_import.hpp and docs/import.md) ---
    /// Column of a field, overriding the default header names: {"deal_id", "商机编号"}.
    /// Fields: deal_id, stage, entered, exited, next_stage, changed_at, amount, currency and
    /// any extra column (owner=负责人 names the extra column `owner`).
    std::vector<std::pair<std::string, std::string>> columns;
    /// Renames stages as they are read (old name -> new name), before anything else sees them.
    std::vector<std::pair<std::string, std::string>> stage_map;
    /// Outcomes by name: recognise won/lost names in English and Chinese (outcome_by_name)
    /// plus `won` and `lost`, and make a stage that ends deals without being an outcome an
    /// error (a misspelt `Wonn`) instead of a new inferred outcome.
    bool recognise_outcomes = false;
    std::vector<std::string> won;  ///< more won outcome names (with recognise_outcomes)
    std::vector<std::string> lost; ///< more lost outcome names (with recognise_outcomes)
    /// Field separator: `,`, `;`, a tab or `|`; 0 detects it from the header line.
    char delimiter = 0;
    /// strftime-style pattern of the dates (`%d/%m/%Y %H:%M`); empty: ISO-8601,
    /// `YYYY/MM/DD HH:MM`, `M/D/YYYY` and `D.M.YYYY` are recognised.
    std::string date_format;
    /// Amounts use a decimal comma (`1.234,50`).
    bool decimal_comma = false;
    /// Exchange rates to the report currency (read_fx_rates): an amount in a listed currency
    /// (symbol, code or currency column) is converted at the rate of its row's first time;
    /// amounts without a currency are taken as in the report currency; a currency without a
    /// rate is an error. Empty: two currencies in one file are an error.
    std::vector<fx_rate> fx;
};

/// What an outcome name means.
enum class outcome_kind { none, won, lost };

/// Recognises an outcome by its name: won, win, closed won, 赢单, 成交, 签约 are wins; lost,
/// lose, closed lost, 丢单, 输单, 失败 are losses (any case; blanks, '-' and '_' ignored).
template <class = void>
[[nodiscard]] outcome_kind outcome_by_name(std::string_view name) {
    std::string s;
    for (char ch : detail::trim(name)) {
        const char l = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        if (l == ' ' || l == '-' || l == '_') continue;
        s += l;
    }
    for (std::string_view w : {"won", "win", "closedwon", "closedwin", "赢单", "成交", "签约"})
        if (s == w) return outcome_kind::won;
    for (std::string_view w : {"lost", "lose", "closedlost", "丢单", "输单", "失败"})
        if (s == w) return outcome_kind::lost;
    return outcome_kind::none;
}

/// The kind of outcome `name` is under the options: `opt.lost` and `opt.won` first, then
/// (with recognise_outcomes) outcome_by_name; an `opt.outcomes` name not recognised counts
/// as lost.
template <class = void>
[[nodiscard]] outcome_kind outcome_of(std::string_view name, const history_options& opt) {
    if (std::find(opt.lost.begin(), opt.lost.end(), name) != opt.lost.end()) return outcome_kind::lost;
    if (std::find(opt.won.begin(), opt.won.end(), name) != opt.won.end()) return outcome_kind::won;
    const auto k = opt.recognise_outcomes ? outcome_by_name(name) : outcome_kind::none;
    if (k != outcome_kind::none) return k;
    if (std::find(opt.outcomes.begin(), opt.outcomes.end(), name) != opt.outcomes.end()) return outcome_kind::lost;
    return outcome_kind::none;
}

/// Sentinel stage code: "no next stage" (a censored visit).
inline constexpr std::uint32_t no_stage = std::numeric_limits<std::uint32_t>::max();

/// The visits of a deal history, one entry per visit in each column (structure of arrays),
/// sorted by deal then entry time. Deal ids, stage names and extra columns are
/// dictionary-encoded. Built by read_visit_log / read_stage_changes (or add_visit + finish).
struct visit_log {
    // --- dictionaries ---
    std::vector<std::string> deal_ids;    ///< deal code -> id
    std::vector<std::string> stage_names; ///< stage code -> name (visited stages and next stages)
    std::vector<std::uint8_t> stage_open; ///< stage code -> 1 for an open stage, 0 for an outcome

    // --- one entry per visit ---
    std::vector<std::uint32_t> deal;  ///< deal code
    std::vector<std::uint32_t> stage; ///< stage code (always an open stage)
    std::vector<std::uint32_t> next;  ///< next stage code, or no_stage when censored
    std::vector<double> entered;      ///< entry time (model time unit)
    std::vector<double> exited;       ///< exit time; NaN when censored
    std::vector<double> amount;       ///< deal amount on the row; NaN when not given
    std::vector<std::size_t> line;    ///< source line (0 for visits added in code)

    // --- extra columns, one code per visit each ---
    std::vector<std::string> extra_columns;             ///< names (lower case)
    std::vector<std::vector<std::uint32_t>> extra;      ///< [column][visit] -> value code
    std::vector<std::vector<std::string>> extra_values; ///< [column][code] -> value

    double end_time = std::numeric_limits<double>::quiet_NaN(); ///< censoring time of open visits
    bool dates = false;                  ///< times came from ISO-8601 dates
    std::string source = "<stream>";     ///< file name
    std::vector<skipped_row> skipped;    ///< rows skipped under skip_bad_rows
    std::size_t repeated_rows = 0;       ///< stage-change rows repeating the current stage (merged)

    /// Number of visits.
    [[nodiscard]] std::size_t size() const noexcept { return stage.size(); }
    [[nodiscard]] bool empty() const noexcept { return stage.empty(); }
    /// True if visit i is still open at the log end.
    [[nodiscard]] bool censored(std::size_t i) const noexcept { return next[i] == no_stage; }
    /// Time spent in the stage: exit - entry, or end_time - entry when censored.
    [[nodiscard]] double duration(std::size_t i) const noexcept {
        return (censored(i) ? end_time : exited[i]) - entered[i];
    }
    /// Code of a stage name, if present.
    [[nodiscard]] std::optional<std::uint32_t> find_stage(std::string_view name) const {
        for (std::size_t s = 0; s < stage_names.size(); ++s)
            if (stage_names[s] == name) return static_cast<std::uint32_t>(s);
        return std::nullopt;
    }
    /// Index of an extra column by (case-insensitive) name, if present.
    [[nodiscard]] std::optional<std::size_t> find_column(std::string_view name) const {
        const std::string n = detail::lower(detail::trim(name));
        for (std::size_t c = 0; c < extra_columns.size(); ++c)
            if (extra_columns[c] == n) return c;
        return std::nullopt;
    }
    /// Number of distinct deals.
    [[nodiscard]] std::size_t deal_count() const noexcept { return deal_ids.size(); }

    /// Adds a visit by names (for logs built in code; call finish() afterwards).
    /// `exited` NaN and `next_stage` empty mark a censored visit.
    void add_visit(std::string_view deal_id, std::string_view stage_name, double entry, double exit,
                   std::string_view next_stage, double deal_amount = std::numeric_limits<double>::quiet_NaN(),
                   std::size_t source_line = 0) {
        deal.push_back(deal_code(deal_id));
        stage.push_back(stage_code(stage_name));
        next.push_back(next_stage.empty() ? no_stage : stage_code(next_stage));
        entered.push_back(entry);
        exited.push_back(exit);
        amount.push_back(deal_amount);
        line.push_back(source_line);
        for (auto& col : extra) col.push_back(0);
    }

    /// Dictionary code of a deal id (added if new).
    std::uint32_t deal_code(std::string_view id) {
        const auto [it, fresh] = deal_index_.try_emplace(std::string(id), static_cast<std::uint32_t>(deal_ids.size()));
        if (fresh) deal_ids.emplace_back(id);
        return it->second;
    }
    /// Dictionary code of a stage name (added if new, marked open until finish() decides).
    std::uint32_t stage_code(std::string_view name) {
        const auto [it, fresh] = stage_index_.try_emplace(std::string(name), static_cast<std::uint32_t>(stage_names.size()));
        if (fresh) {
            stage_names.emplace_back(name);
            stage_open.push_back(1);
        }
        return it->second;
    }
    /// Dictionary code of a value of extra column c (added if new).
    std::uint32_t extra_code(std::size_t c, std::string_view value) {
        if (extra_index_.size() < extra_columns.size()) extra_index_.resize(extra_columns.size());
        auto& idx = extra_index_[c];
        const auto [it, fresh] = idx.try_emplace(std::string(value), static_cast<std::uint32_t>(extra_values[c].size()));
        if (fresh) extra_values[c].emplace_back(value);
        return it->second;
    }

    /// Validates the visits added with add_visit and sorts them (see read_visit_log).
    /// @throws parse_error for a non-finite time, an exit before the entry, an exit time
    ///   without next stage or the reverse; and for the problems between the visits of a deal
    ///   as the readers do (recorded instead with opt.skip_bad_rows).
    template <class = void>
    void finish(const history_options& opt = {});

private:
    std::unordered_map<std::string, std::uint32_t> deal_index_;
    std::unordered_map<std::string, std::uint32_t> stage_index_;
    std::vector<std::unordered_map<std::string, std::uint32_t>> extra_index_;
};

namespace detail {

/// Keeps only the visits whose keep flag is set (all columns).
template <class = void>
void filter_visits(visit_log& log, const std::vector<char>& keep) {
    std::size_t w = 0;
    for (std::size_t i = 0; i < log.size(); ++i) {
        if (!keep[i]) continue;
        log.deal[w] = log.deal[i];
        log.stage[w] = log.stage[i];
        log.next[w] = log.next[i];
        log.entered[w] = log.entered[i];
        log.exited[w] = log.exited[i];
        log.amount[w] = log.amount[i];
        log.line[w] = log.line[i];
        for (auto& col : log.extra) col[w] = col[i];
        ++w;
    }
    log.deal.resize(w);
    log.stage.resize(w);
    log.next.resize(w);
    log.entered.resize(w);
    log.exited.resize(w);
    log.amount.resize(w);
    log.line.resize(w);
    for (auto& col : log.extra) col.resize(w);
}

/// Reorders every column by the permutation `order` (new i = old order[i]).
template <class = void>
void permute_visits(visit_log& log, const std::vector<std::size_t>& order) {
    auto apply = [&](auto& v) {
        auto copy = v;
        for (std::size_t i = 0; i < order.size(); ++i) v[i] = copy[order[i]];
    };
    apply(log.deal);
    apply(log.stage);
    apply(log.next);
    apply(log.entered);
    apply(log.exited);
    apply(log.amount);
    apply(log.line);
    for (auto& col : log.extra) apply(col);
}

/// Two times are equal up to rounding of the source text.
template <class = void>
[[nodiscard]] bool same_time(double a, double b) noexcept {
    return std::abs(a - b) <= 1e-9 * std::max({1.0, std::abs(a), std::abs(b)});
}

/// Columns (1-based) named in the messages of check_visit_chains.
struct chain_columns {
    std::size_t stage = 2, entered = 3, next = 5;
};

/// Sorts by (deal, entry, line) and checks the visits of each deal against each other.
/// A problem throws a parse_error at the offending row, or (skip) drops all the deal's rows.
template <class = void>
void check_visit_chains(visit_log& log, const history_options& opt, chain_columns col) {
    const std::size_t n = log.size();
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), std::size_t{0});
    const bool sorted = std::is_sorted(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        if (log.deal[a] != log.deal[b]) return log.deal[a] < log.deal[b];
        if (log.entered[a] != log.entered[b]) return log.entered[a] < log.entered[b];
        return log.line[a] < log.line[b];
    });
    if (!sorted) {
        std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
            if (log.deal[a] != log.deal[b]) return log.deal[a] < log.deal[b];
            if (log.entered[a] != log.entered[b]) return log.entered[a] < log.entered[b];
            return log.line[a] < log.line[b];
        });
        permute_visits(log, order);
    }

    std::vector<char> keep(n, 1);
    bool dropped = false;
    auto fail = [&](std::size_t first, std::size_t last, std::size_t at, std::size_t column,
                    const std::string& what) {
        parse_error e(log.source, log.line[at], column, what);
        if (!opt.skip_bad_rows) throw e;  // NOLINT(misc-throw-by-value-catch-by-reference): the named error is also kept when skipping
        dropped = true;
        for (std::size_t k = first; k < last; ++k) {
            keep[k] = 0;
            log.skipped.push_back({log.line[k], k == at ? std::string(e.what())
                                                        : message(log.source, ":", log.line[k], ": skipped with deal '",
                                                                  log.deal_ids[log.deal[k]], "' (see line ", log.line[at], ")")});
        }
    };
    for (std::size_t first = 0; first < n;) {
        std::size_t last = first + 1;
        while (last < n && log.deal[last] == log.deal[first]) ++last;
        const std::string& id = log.deal_ids[log.deal[first]];
        for (std::size_t k = first; k < last; ++k) {
            const bool is_last = k + 1 == last;
            if (log.censored(k)) {
                if (!is_last) {
                    fail(first, last, k + 1, col.entered,
                         message("deal '", id, "': visit of line ", log.line[k], " in '", log.stage_names[log.stage[k]],
                                 "' has no exit but the deal has a later visit (overlapping visits)"));
                    break;
                }
                continue;
            }
            if (is_last) {
                if (log.stage_open[log.next[k]]) {
                    fail(first, last, k, col.next,
                         message("deal '", id, "': leaves to open stage '", log.stage_names[log.next[k]],
                                 "' but has no visit there"));
                    break;
                }
                continue;
            }
            if (log.next[k] != log.stage[k + 1]) {
                fail(first, last, k, col.next,
                     message("deal '", id, "': next stage '", log.stage_names[log.next[k]], "'",
                             log.stage_open[log.next[k]] ? "" : " (an outcome: no deal visits it)",
                             " but the deal's next visit (line ", log.line[k + 1], ") is in '",
                             log.stage_names[log.stage[k + 1]], "'"));
                break;
            }
            if (log.entered[k + 1] < log.exited[k] && !same_time(log.entered[k + 1], log.exited[k])) {
                fail(first, last, k + 1, col.entered,
                     message("deal '", id, "': overlapping visits: enters '", log.stage_names[log.stage[k + 1]], "' at ",
                             log.entered[k + 1], " before the visit of line ", log.line[k], " exits at ", log.exited[k]));
                break;
            }
        }
        first = last;
    }
    if (dropped) filter_visits(log, keep);
}

/// Finishes a log read from a source: a stage named in opt.outcomes is an outcome and one
/// named in opt.stages is open, whatever the data suggested (log.stage_open); the log ends at
/// `as_of`, else at its latest entry or exit; then check_visit_chains (messages naming the
/// columns `col`).
template <class = void>
void finish_log(visit_log& log, const history_options& opt, std::optional<double> as_of,
                chain_columns col = {}) {
    std::unordered_set<std::string> known_open(opt.stages.begin(), opt.stages.end());
    std::unordered_set<std::string> known_outcome(opt.outcomes.begin(), opt.outcomes.end());
    for (std::size_t s = 0; s < log.stage_names.size(); ++s) {
        if (known_outcome.contains(log.stage_names[s])) log.stage_open[s] = 0;
        if (known_open.contains(log.stage_names[s])) log.stage_open[s] = 1;
    }
    double latest = -std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < log.size(); ++i)
        latest = std::max({latest, log.entered[i], std::isnan(log.exited[i]) ? latest : log.exited[i]});
    log.end_time = as_of ? *as_of : latest;
    check_visit_chains(log, opt, col);
}

} // namespace detail

template <class>
void visit_log::finish(const history_options& opt) {
    for (std::size_t i = 0; i < size(); ++i) {
        auto bad = [&](const std::string& what) {
            throw parse_error(source, line[i], 0,
                              detail::message("deal '", deal_ids[deal[i]], "', stage '", stage_names[stage[i]], "': ", what));
        };
        if (!(std::abs(entered[i]) <= detail::max_abs_time))
            bad(detail::message("entry time ", entered[i], " is not finite or beyond ", detail::max_abs_time, " in magnitude"));
        if (censored(i) != std::isnan(exited[i])) bad("an exit time needs a next stage and the reverse");
        if (!censored(i) && !(exited[i] >= entered[i]))
            bad(detail::message("the visit ends (", exited[i], ") before it starts (", entered[i], ")"));
        if (!censored(i) && !(std::abs(exited[i]) <= detail::max_abs_time))
            bad(detail::message("exit time ", exited[i], " is not finite or beyond ", detail::max_abs_time, " in magnitude"));
    }
    std::optional<double> as_of;
    if (opt.as_of) as_of = detail::parse_number(*opt.as_of, "as-of", 0, 0, "as_of");
    std::vector<char> visited(stage_names.size(), 0);
    for (auto s : stage) visited[s] = 1;
    for (std::size_t s = 0; s < stage_names.size(); ++s) stage_open[s] = visited[s];
    detail::finish_log(*this, opt, as_of);
}

namespace detail {

/// With recognise_outcomes: every stage that ends deals (`final_[s]`: a next stage never
/// visited, or a stage no deal leaves) must be an outcome by name or option, or a listed open
/// stage. @throws parse_error at the first visit that leads there (`column` of that stage).
template <class = void>
void check_final_stages(const visit_log& log, const history_options& opt, const std::vector<char>& left_or_visited,
                        std::size_t column, const std::vector<std::size_t>& first_line = {}) {
    if (!opt.recognise_outcomes) return;
    for (std::size_t s = 0; s < log.stage_names.size(); ++s) {
        if (left_or_visited[s]) continue;
        const std::string& name = log.stage_names[s];
        if (outcome_of(name, opt) != outcome_kind::none) continue;
        if (std::find(opt.stages.begin(), opt.stages.end(), name) != opt.stages.end()) continue;
        std::size_t line = s < first_line.size() ? first_line[s] : 0;
        for (std::size_t i = 0; line == 0 && i < log.size(); ++i)
            if (log.next[i] == s) line = log.line[i];
        throw parse_error(log.source, line, column,
                          message("stage '", clip(name), "' ends deals (no deal leaves it) but is not a known outcome "
                                  "(won: Won, Closed Won, 赢单, 成交, 签约 or --won; lost: Lost, Closed Lost, 丢单, 输单, "
                                  "失败 or --lost): a misspelt outcome? (an open stage no deal has left yet: list it in "
                                  "--stage-order)"));
    }
}

/// Shared state of the readers: header, column map, time kinds, per-row error handling.
class history_reader {
public:
    history_reader(std::istream& in, const history_options& opt)
        : csv_(in, opt.source, csv_dialect{opt.delimiter, true, std::size_t{1} << 20}), opt_(opt) {
        if (!(std::isfinite(opt.days_per_unit) && opt.days_per_unit > 0.0))
            throw argument_error(message("history: days_per_unit must be positive, got ", opt.days_per_unit));
        if (opt.delimiter != 0 && opt.delimiter != ',' && opt.delimiter != ';' && opt.delimiter != '\t' && opt.delimiter != '|')
            throw argument_error(message("history: the delimiter must be ',', ';', tab or '|', got '", std::string(1, opt.delimiter), "'"));
        if (!csv_.next(fields_)) throw parse_error(opt.source, 0, 0, "empty file: expected a header line");
        header_ = csv_header(fields_);
        raw_header_ = fields_;
        log_.source = opt.source;
        for (const auto& [old_name, new_name] : opt.stage_map) stage_map_.emplace(old_name, new_name);
        if (!opt.stages.empty()) { // the stage names are given: anything else is unknown
            for (const auto& s : opt.stages) known_.insert(s);
            for (const auto& s : opt.outcomes) known_.insert(s);
            for (const auto& s : opt.won) known_.insert(s);
            for (const auto& s : opt.lost) known_.insert(s);
        }
        for (const auto& s : opt.outcomes) outcomes_.insert(s);
        for (const auto& s : opt.won) outcomes_.insert(s);
        for (const auto& s : opt.lost) outcomes_.insert(s);
        for (const auto& [field, column] : opt.columns) {
            if (trim(field).empty() || trim(column).empty())
                throw argument_error(message("history: bad column mapping '", field, "=", column, "' (FIELD=COLUMN)"));
            const auto c = header_.find({lower(trim(column))});
            if (!c)
                throw parse_error(opt.source, csv_.line(), 0,
                                  message("column '", clip(column), "' mapped to field '", field,
                                          "' is not in the header (", header_list(), ")"));
        }
    }

    /// The column of a field: the mapped one, else the first of the aliases (the first alias
    /// names the field). @throws parse_error naming the field when there is none.
    [[nodiscard]] std::size_t required(std::initializer_list<std::string_view> names) {
        if (auto c = optional(names)) return *c;
        throw parse_error(opt_.source, csv_.line(), 0,
                          message("missing required column '", *names.begin(), "' (columns: ", header_list(),
                                  "; name it with --map ", *names.begin(), "=COLUMN or give --format)"));
    }
    [[nodiscard]] std::optional<std::size_t> optional(std::initializer_list<std::string_view> names) {
        const std::string field(*names.begin());
        for (const auto& [f, column] : opt_.columns)
            if (lower(trim(f)) == field) {
                mapped_.push_back(field);
                return use(*header_.find({lower(trim(column))}));
            }
        for (auto n : names) {
            const auto c = header_.find({n});
            if (c && !is_mapped_column(*c)) return use(*c);
        }
        return std::nullopt;
    }
    /// Columns the format knows but does not use: not kept as extra columns.
    void ignore(std::initializer_list<std::string_view> names) {
        for (auto n : names)
            if (auto c = header_.find({n}); c && !is_mapped_column(*c)) used_.push_back(*c);
    }
    /// The header name of column c as written.
    [[nodiscard]] const std::string& raw_name(std::size_t c) const { return raw_header_[c]; }
    [[nodiscard]] const csv_header& header() const noexcept { return header_; }

    /// Every column not used by the format becomes an extra column (named by the field a
    /// --map entry gives it, else by its header name).
    void keep_extra_columns() {
        for (std::size_t c = 0; c < header_.size(); ++c) {
            if (std::find(used_.begin(), used_.end(), c) != used_.end()) continue;
            std::string name = header_.name(c);
            for (const auto& [f, column] : opt_.columns)
                if (lower(trim(column)) == name && std::find(mapped_.begin(), mapped_.end(), lower(trim(f))) == mapped_.end())
                    name = lower(trim(f));
            extra_cols_.push_back(c);
            log_.extra_columns.push_back(name);
            log_.extra_values.emplace_back();
            log_.extra.emplace_back();
        }
        needed_ = 0;
        for (auto c : used_) needed_ = std::max(needed_, c + 1);
        for (auto c : extra_cols_) needed_ = std::max(needed_, c + 1);
    }

    /// Reads the next row; returns false at the end.
    bool next() { return csv_.next(fields_); }
    [[nodiscard]] std::size_t line() const noexcept { return csv_.line(); }
    [[nodiscard]] std::string_view field(std::size_t c) const { return trim(fields_[c]); }
    [[nodiscard]] std::size_t field_count() const noexcept { return fields_.size(); }

    [[noreturn]] void row_error(std::size_t c, const std::string& what) const {
        if (c == no_column) throw parse_error(opt_.source, csv_.line(), 0, what);
        throw parse_error(opt_.source, csv_.line(), c + 1, message("column '", raw_header_[c], "': ", what));
    }
    static constexpr std::size_t no_column = std::numeric_limits<std::size_t>::max();

    /// A time field (number or date), converted; nullopt if empty. Checks kind consistency
    /// and the as-of bound.
    std::optional<double> time(std::size_t c) {
        bool is_date = false;
        auto t = parse_time_field(fields_[c], opt_.date_format, opt_.source, csv_.line(), c + 1, raw_header_[c], &is_date);
        if (!t) return t;
        if (!(std::abs(*t) <= max_abs_time))
            row_error(c, message("time '", clip(field(c)), "' is out of range (at most ", max_abs_time,
                                 " in magnitude: durations and sums of such times overflow)"));
        if (kind_ == unknown) kind_ = is_date ? dates : numbers;
        if ((kind_ == dates) != is_date)
            row_error(c, message("'", clip(field(c)), "' mixes ", is_date ? "a date into numeric times" : "a number into date times"));
        if (std::isnan(row_day_)) row_day_ = is_date ? *t : std::numeric_limits<double>::quiet_NaN();
        if (is_date) *t /= opt_.days_per_unit;
        if (as_of() && *t > *as_of_ && !same_time(*t, *as_of_))
            row_error(c, message("time '", clip(field(c)), "' is after the as-of time ", *opt_.as_of));
        return t;
    }
    /// The as-of time, parsed once the kind of the file's times is known.
    std::optional<double> as_of() {
        if (!opt_.as_of || as_of_) return as_of_;
        bool is_date = false;
        as_of_ = parse_time_field(*opt_.as_of, {}, "as-of", 0, 0, "as_of", &is_date);
        if (!as_of_) throw argument_error("history: empty as-of time");
        if (!(std::abs(*as_of_) <= max_abs_time))
            throw argument_error(message("history: as-of '", clip(*opt_.as_of), "' is out of range (at most ", max_abs_time,
                                         " in magnitude)"));
        if (kind_ != unknown && (kind_ == dates) != is_date)
            throw argument_error(message("history: as-of '", *opt_.as_of, "' must be ",
                                         kind_ == dates ? "an ISO-8601 date" : "a number", " like the file's times"));
        if (is_date) *as_of_ /= opt_.days_per_unit;
        return as_of_;
    }
    /// An optional non-negative amount (currency symbols, thousands separators); NaN if
    /// empty. Every row's currency (symbol, code or the currency column) must be the same.
    double amount(std::optional<std::size_t> c) {
        std::string row_currency;
        if (currency_col_ && !field(*currency_col_).empty()) {
            row_currency = currency_code_of(field(*currency_col_));
            if (opt_.fx.empty()) note_currency(row_currency, *currency_col_);
        }
        if (!c) return std::numeric_limits<double>::quiet_NaN();
        auto a = parse_amount(fields_[*c], opt_.decimal_comma, opt_.source, csv_.line(), *c + 1, raw_header_[*c]);
        if (!a) return std::numeric_limits<double>::quiet_NaN();
        if (!a->currency.empty()) {
            if (!row_currency.empty() && a->currency != row_currency)
                row_error(*c, message("the amount is in ", a->currency, ", the currency column says ", clip(row_currency)));
            row_currency = a->currency;
            if (opt_.fx.empty()) note_currency(a->currency, *c);
        }
        if (!opt_.fx.empty() && !row_currency.empty()) {
            const auto rate = fx_rate_at(opt_.fx, row_currency, row_day_);
            if (!rate) row_error(*c, message("no exchange rate for ", clip(row_currency), " (--fx)"));
            a->value *= *rate;
            currency_ = "converted";
        }
        total_ += a->value;
        if (!std::isfinite(total_)) row_error(*c, message("the amounts' sum overflows at '", clip(field(*c)), "'"));
        return a->value;
    }
    /// Uses the currency column (field `currency`) if present.
    void currency_column() { currency_col_ = optional({"currency", "currencyisocode", "currency_code", "currency code"}); }

    /// A stage name (renamed by the stage map): non-empty, known when the options list the
    /// stages, not an outcome where one cannot be.
    std::string_view stage_name(std::size_t c, bool may_be_outcome) { return stage_text(field(c), c, may_be_outcome); }
    std::string_view stage_text(std::string_view s, std::size_t c, bool may_be_outcome) {
        if (s.empty()) row_error(c, "empty stage name");
        if (!stage_map_.empty())
            if (auto it = stage_map_.find(std::string(s)); it != stage_map_.end()) s = it->second;
        if (!known_.empty() && !known_.contains(std::string(s)) &&
            !(may_be_outcome && opt_.recognise_outcomes && outcome_by_name(s) != outcome_kind::none))
            row_error(c, message("unknown stage '", clip(s), "'"));
        if (!may_be_outcome && (outcomes_.contains(std::string(s)) ||
                                (opt_.recognise_outcomes && outcome_by_name(s) != outcome_kind::none)))
            row_error(c, message("stage '", clip(s), "' is an outcome and cannot be visited"));
        return s;
    }
    /// Appends the extra-column codes of the current row to the (just added) last visit.
    void add_extras() {
        for (std::size_t k = 0; k < extra_cols_.size(); ++k)
            log_.extra[k].back() = log_.extra_code(k, field(extra_cols_[k]));
    }
    /// The extra-column codes of the current row.
    [[nodiscard]] std::vector<std::uint32_t> extra_codes() {
        std::vector<std::uint32_t> codes(extra_cols_.size());
        for (std::size_t k = 0; k < extra_cols_.size(); ++k) codes[k] = log_.extra_code(k, field(extra_cols_[k]));
        return codes;
    }

    /// Runs one row's parsing; under skip_bad_rows a parse_error is recorded instead.
    template <class F>
    void row(F&& f) {
        row_day_ = std::numeric_limits<double>::quiet_NaN();
        auto body = [&] {
            if (fields_.size() < needed_)
                row_error(no_column, message("expected ", needed_, " fields, got ", fields_.size()));
            if (fields_.size() > header_.size())
                throw parse_error(opt_.source, csv_.line(), header_.size() + 1,
                                  message("the row has ", fields_.size(), " fields, the header ", header_.size(),
                                          ": a value with an unquoted '", std::string(1, csv_.delimiter()),
                                          "' (like 1,200)? the first extra field is '", clip(fields_[header_.size()]), "'"));
            f();
        };
        if (!opt_.skip_bad_rows) return body();
        try {
            body();
        } catch (const parse_error& e) {
            log_.skipped.push_back({e.line(), e.what()});
        }
    }

    [[nodiscard]] bool dates_kind() const noexcept { return kind_ == dates; }
    visit_log& log() noexcept { return log_; }
    [[nodiscard]] const history_options& options() const noexcept { return opt_; }
    /// The one currency of the amounts, if any was written.
    [[nodiscard]] const std::string& currency() const noexcept { return currency_; }

private:
    std::size_t use(std::size_t c) {
        used_.push_back(c);
        return c;
    }
    [[nodiscard]] bool is_mapped_column(std::size_t c) const {
        for (const auto& [f, column] : opt_.columns)
            if (lower(trim(column)) == header_.name(c)) return true;
        return false;
    }
    [[nodiscard]] std::string header_list() const {
        std::string out;
        for (std::size_t c = 0; c < raw_header_.size() && c < 12; ++c) out += (c ? ", " : "") + clip(raw_header_[c]);
        if (raw_header_.size() > 12) out += message(", ... ", raw_header_.size(), " in all");
        return out;
    }
    void note_currency(const std::string& code, std::size_t c) {
        if (currency_.empty()) {
            currency_ = code;
            currency_line_ = csv_.line();
        } else if (code != currency_) {
            row_error(c, message("mixed currencies: ", clip(code), " here, ", currency_, " on line ", currency_line_,
                                 " (convert the amounts to one currency first)"));
        }
    }

    csv_reader csv_;
    const history_options& opt_;
    std::vector<std::string> fields_, raw_header_;
    csv_header header_;
    std::vector<std::size_t> used_, extra_cols_;
    std::vector<std::string> mapped_;
    std::size_t needed_ = 0;
    enum { unknown, numbers, dates } kind_ = unknown;
    std::optional<double> as_of_;
    std::unordered_set<std::string> known_, outcomes_;
    std::unordered_map<std::string, std::string> stage_map_;
    std::optional<std::size_t> currency_col_;
    std::string currency_;
    std::size_t currency_line_ = 0;
    double total_ = 0.0;
    double row_day_ = std::numeric_limits<double>::quiet_NaN(); ///< the first date of the row (days)
    visit_log log_;
};

} // namespace detail

/// Reads a visit log (`deal_id, stage, entered, exited, next_stage[, amount]`, extra columns
/// kept). Outcomes are the next stages never visited, unless `opt.outcomes` names them.
/// @throws parse_error naming source:line:column for a missing required column, a row with
///   too few fields, an empty deal id or stage, a bad number or date, a file mixing dates
///   and numbers, a negative amount, an exit before the entry, an exit time without next
///   stage or the reverse, a time after the as-of time, an unknown stage (with opt.stages),
///   and the problems between the visits of one deal listed in the file comment
///   (with opt.skip_bad_rows these are recorded in `skipped` instead).
/// @throws argument_error for bad options (days_per_unit, as_of).
/// Complexity: O(n log n) for n rows (a sort unless the rows come sorted by deal and time).
/// Example: `auto log = load_visit_log(PIPECAST_SHARED_DIR "/scenarios/b2b6_history.csv");`
namespace detail {
template <class = void>
[[nodiscard]] visit_log read_visit_log_impl(std::istream& in, const history_options& opt, std::string* currency);
template <class = void>
[[nodiscard]] visit_log read_stage_changes_impl(std::istream& in, const history_options& opt, std::string* currency);
} // namespace detail

template <class = void>
[[nodiscard]] visit_log read_visit_log(std::istream& in, const history_options& opt = {}) {
    return detail::read_visit_log_impl(in, opt, nullptr);
}

/// read_visit_log, also giving the one currency of the amounts (when written).
template <class>
[[nodiscard]] visit_log detail::read_visit_log_impl(std::istream& in, const history_options& opt, std::string* currency) {
    detail::history_reader r(in, opt);
    // Beside the English names, those of Chinese CRM exports and Excel sheets (商机编号, 阶段, ...).
    const std::size_t c_id = r.required({"deal_id", "id", "deal", "商机编号", "商机id", "商机号", "机会编号", "编号"});
    const std::size_t c_stage = r.required({"stage", "阶段", "销售阶段", "商机阶段"});
    const std::size_t c_in = r.required({"entered", "entered_at", "start", "进入时间", "开始时间"});
    const std::size_t c_out = r.required({"exited", "exited_at", "end", "离开时间", "退出时间", "结束时间"});
    const std::size_t c_next = r.required({"next_stage", "next", "下一阶段"});
    const auto c_amount = r.optional({"amount", "value", "金额", "商机金额", "预计金额", "合同金额"});
    r.currency_column();
    r.keep_extra_columns();
    visit_log& log = r.log();
    while (r.next()) {
        r.row([&] {
            const std::string_view id = r.field(c_id);
            if (id.empty()) r.row_error(c_id, "empty deal id");
            const std::string_view stage = r.stage_name(c_stage, false);
            const auto in_t = r.time(c_in);
            if (!in_t) r.row_error(c_in, "empty entry time");
            const auto out_t = r.time(c_out);
            std::string_view next = r.field(c_next);
            if (out_t && next.empty()) r.row_error(c_next, "an exit time needs a next stage");
            if (!out_t && !next.empty())
                r.row_error(c_out, detail::message("next stage '", detail::clip(next), "' without an exit time"));
            if (!next.empty()) next = r.stage_name(c_next, true);
            if (out_t && *out_t < *in_t)
                r.row_error(c_out, detail::message("the visit ends (", r.field(c_out), ") before it starts (", r.field(c_in), ")"));
            const double amount = r.amount(c_amount);
            // NOLINTNEXTLINE(readability-suspicious-call-argument): stage is the visit's stage, next its next stage
            log.add_visit(id, stage, *in_t, out_t ? *out_t : std::numeric_limits<double>::quiet_NaN(), next, amount,
                          r.line());
            r.add_extras();
        });
    }
    log.dates = r.dates_kind();
    // Open stages: those visited (and the listed ones); next stages never visited are outcomes.
    std::vector<char> visited(log.stage_names.size(), 0);
    for (auto s : log.stage) visited[s] = 1;
    for (std::size_t s = 0; s < log.stage_names.size(); ++s) log.stage_open[s] = visited[s];
    detail::check_final_stages(log, opt, visited, c_next + 1);
    detail::finish_log(log, opt, r.as_of(), {c_stage + 1, c_in + 1, c_next + 1});
    if (currency) *currency = r.currency();
    return log;
}

namespace detail {

/// One row of a stage-change log: the deal (code in the reader's log), the stage entered,
/// when, the amount on the row, the source line, the extra-column codes, and (Salesforce's
/// FromOpportunityStageName) the stage left, to order changes with equal times.
struct change_row {
    std::uint32_t deal, stage;
    double time, amount;
    std::size_t line;
    std::vector<std::uint32_t> extra;
    std::uint32_t from = no_stage;
};

/// Puts the changes of one deal at the same time into the order their `from` stages chain
/// (a change leaving stage s follows the change into s); without `from` the order is kept.
template <class = void>
void chain_equal_times(std::vector<change_row>& rows) {
    for (std::size_t first = 0; first < rows.size();) {
        std::size_t last = first + 1;
        while (last < rows.size() && rows[last].deal == rows[first].deal && rows[last].time == rows[first].time) ++last;
        if (last - first > 1) {
            std::uint32_t prev = first > 0 && rows[first - 1].deal == rows[first].deal ? rows[first - 1].stage : no_stage;
            for (std::size_t k = first; k < last; ++k) {
                std::size_t pick = k;
                for (std::size_t j = k; j < last; ++j)
                    if (rows[j].from != no_stage && rows[j].from == prev) {
                        pick = j;
                        break;
                    }
                if (pick == k && prev != no_stage) { // no chain: a row whose from is no other row's stage starts
                    for (std::size_t j = k; j < last; ++j) {
                        bool follows = false;
                        for (std::size_t i = k; i < last; ++i)
                            if (i != j && rows[j].from != no_stage && rows[j].from == rows[i].stage) follows = true;
                        if (!follows) {
                            pick = j;
                            break;
                        }
                    }
                }
                std::rotate(rows.begin() + static_cast<std::ptrdiff_t>(k), rows.begin() + static_cast<std::ptrdiff_t>(pick),
                            rows.begin() + static_cast<std::ptrdiff_t>(pick) + 1);
                prev = rows[k].stage;
            }
        }
        first = last;
    }
}

/// Turns change rows into visits (see read_stage_changes). `log` holds the dictionaries the
/// rows' codes refer to (and the skipped rows and extra columns); `stage_column` (1-based) is
/// named in the errors.
template <class = void>
[[nodiscard]] visit_log visits_from_changes(visit_log& log, std::vector<change_row> rows, const history_options& opt,
                                            std::optional<double> as_of, bool dates, std::size_t stage_column) {
    using change = change_row;
    const std::size_t c_stage = stage_column - 1;
    // The visits are built in a second log (dictionaries in visit order).
    visit_log out;
    out.source = opt.source;
    out.dates = dates;
    out.skipped = std::move(log.skipped);
    out.extra_columns = log.extra_columns;
    out.extra_values = log.extra_values;
    out.extra.resize(log.extra_columns.size());

    std::stable_sort(rows.begin(), rows.end(), [](const change& a, const change& b) {
        return a.deal != b.deal ? a.deal < b.deal : a.time < b.time;
    });
    chain_equal_times(rows);
    // Outcomes: named, or stages that no deal ever leaves (with recognise_outcomes: by name).
    std::vector<char> left(log.stage_names.size(), 0);
    for (std::size_t k = 0; k + 1 < rows.size(); ++k)
        if (rows[k].deal == rows[k + 1].deal && rows[k].stage != rows[k + 1].stage) left[rows[k].stage] = 1;
    std::unordered_set<std::string> named_outcome(opt.outcomes.begin(), opt.outcomes.end());
    named_outcome.insert(opt.won.begin(), opt.won.end());
    named_outcome.insert(opt.lost.begin(), opt.lost.end());
    std::unordered_set<std::string> named_open(opt.stages.begin(), opt.stages.end());
    if (opt.recognise_outcomes) {
        std::vector<std::size_t> first_line(log.stage_names.size(), 0);
        for (const auto& row : rows)
            if (first_line[row.stage] == 0 || row.line < first_line[row.stage]) first_line[row.stage] = row.line;
        log.source = opt.source;
        std::vector<char> open_by_data = left; // left by a deal, or where a deal starts
        for (std::size_t k = 0; k < rows.size(); ++k)
            if (k == 0 || rows[k].deal != rows[k - 1].deal) open_by_data[rows[k].stage] = 1;
        check_final_stages(log, opt, open_by_data, stage_column, first_line);
    }
    auto is_outcome = [&](std::uint32_t s) {
        const std::string& nm = log.stage_names[s];
        if (named_outcome.contains(nm)) return true;
        if (named_open.contains(nm)) return false;
        if (opt.recognise_outcomes) return outcome_of(nm, opt) != outcome_kind::none;
        if (!named_outcome.empty()) return false;
        return !left[s];
    };
    const double nan = std::numeric_limits<double>::quiet_NaN();
    auto fail_deal = [&](std::size_t first, std::size_t last, std::size_t at, std::size_t column, const std::string& what) {
        parse_error e(opt.source, rows[at].line, column, what);
        if (!opt.skip_bad_rows) throw e;  // NOLINT(misc-throw-by-value-catch-by-reference): the named error is also kept when skipping
        for (std::size_t k = first; k < last; ++k)
            out.skipped.push_back({rows[k].line, k == at ? std::string(e.what())
                                                         : detail::message(opt.source, ":", rows[k].line, ": skipped with deal '",
                                                                           log.deal_ids[rows[k].deal], "' (see line ",
                                                                           rows[at].line, ")")});
    };
    for (std::size_t first = 0; first < rows.size();) {
        std::size_t last = first + 1;
        while (last < rows.size() && rows[last].deal == rows[first].deal) ++last;
        const std::string& id = log.deal_ids[rows[first].deal];
        // Validate the deal's sequence before emitting anything.
        bool ok = true;
        if (is_outcome(rows[first].stage)) {
            fail_deal(first, last, first, c_stage + 1,
                      detail::message("deal '", id, "': first row is the outcome '", log.stage_names[rows[first].stage],
                                      "' (no open stage visited)"));
            ok = false;
        }
        for (std::size_t k = first; ok && k + 1 < last; ++k) {
            if (is_outcome(rows[k].stage)) {
                fail_deal(first, last, k + 1, c_stage + 1,
                          detail::message("deal '", id, "': stage change after the outcome '",
                                          log.stage_names[rows[k].stage], "' reached on line ", rows[k].line));
                ok = false;
            }
        }
        if (ok) {
            std::size_t open = first; // row that opened the current visit
            for (std::size_t k = first + 1; k <= last; ++k) {
                if (k < last && rows[k].stage == rows[open].stage) { // not a change: merge
                    ++out.repeated_rows;
                    continue;
                }
                const change& o = rows[open];
                if (k == last && is_outcome(o.stage)) break; // the final outcome row closed the last visit
                double amount = o.amount;
                for (std::size_t j = open; j < k; ++j)
                    if (!std::isnan(rows[j].amount)) amount = rows[j].amount;
                if (k < last) {
                    out.add_visit(id, log.stage_names[o.stage], o.time, rows[k].time, log.stage_names[rows[k].stage],
                                  amount, o.line);
                    if (is_outcome(rows[k].stage) && !std::isnan(rows[k].amount)) out.amount.back() = rows[k].amount;
                } else {
                    out.add_visit(id, log.stage_names[o.stage], o.time, nan, "", amount, o.line);
                }
                for (std::size_t c = 0; c < out.extra.size(); ++c) out.extra[c].back() = o.extra[c];
                open = k;
            }
        }
        first = last;
    }
    for (std::size_t s = 0; s < out.stage_names.size(); ++s) {
        const auto code = log.find_stage(out.stage_names[s]);
        out.stage_open[s] = is_outcome(*code) ? 0 : 1;
    }
    std::sort(out.skipped.begin(), out.skipped.end(), [](const skipped_row& a, const skipped_row& b) { return a.line < b.line; });
    detail::finish_log(out, opt, as_of);
    return out;
}

} // namespace detail

/// Reads a stage-change log (`deal_id, stage, changed_at[, amount]`, extra columns kept)
/// and turns it into visits (see the file comment). Rows of one deal at the same time keep
/// their file order; a row repeating the deal's current stage is merged into the open visit
/// (counted in `repeated_rows`). Outcomes are the stages no deal ever leaves, unless
/// `opt.outcomes` names them.
/// @throws parse_error as read_visit_log, and for a deal whose first row is an outcome or a
///   row after a deal reached an outcome.
template <class = void>
[[nodiscard]] visit_log read_stage_changes(std::istream& in, const history_options& opt = {}) {
    return detail::read_stage_changes_impl(in, opt, nullptr);
}

/// read_stage_changes, also giving the one currency of the amounts (when written).
template <class>
[[nodiscard]] visit_log detail::read_stage_changes_impl(std::istream& in, const history_options& opt,
                                                        std::string* currency) {
    detail::history_reader r(in, opt);
    // Beside the English names, those of Chinese CRM exports and Excel sheets (商机编号, 阶段, ...).
    const std::size_t c_id = r.required({"deal_id", "id", "deal", "商机编号", "商机id", "商机号", "机会编号", "编号"});
    const std::size_t c_stage = r.required({"stage", "to_stage", "new_stage", "阶段", "销售阶段", "商机阶段", "新阶段"});
    const std::size_t c_time = r.required({"changed_at", "changed", "date", "timestamp", "time", "变更时间", "阶段变更时间",
                                           "修改时间", "更新时间", "时间", "日期"});
    const auto c_amount = r.optional({"amount", "value", "金额", "商机金额", "预计金额", "合同金额"});
    r.currency_column();
    r.keep_extra_columns();

    std::vector<detail::change_row> rows;
    visit_log& log = r.log();
    while (r.next()) {
        r.row([&] {
            const std::string_view id = r.field(c_id);
            if (id.empty()) r.row_error(c_id, "empty deal id");
            const std::string_view stage = r.stage_name(c_stage, true);
            const auto t = r.time(c_time);
            if (!t) r.row_error(c_time, "empty change time");
            const double amount = r.amount(c_amount);
            rows.push_back({log.deal_code(id), log.stage_code(stage), *t, amount, r.line(), r.extra_codes()});
        });
    }
    if (currency) *currency = r.currency();
    return detail::visits_from_changes(log, std::move(rows), opt, r.as_of(), r.dates_kind(), c_stage + 1);
}

/// Adds an extra column (default "size_band") labelling each visit with its deal's amount
/// band, for segment fits by deal size. `edges` are increasing band limits e_1 < ... < e_k;
/// the labels are "<e_1", "e_1-e_2", ..., ">=e_k"; a deal's amount is the last one given on
/// its rows, and deals without an amount get "unknown".
/// @throws argument_error if the edges are empty, not increasing or not finite, or the
///   column already exists.
/// Example: `add_amount_bands(log, {10000, 50000}); auto fits = fit_segments(log, "size_band");`
template <class = void>
void add_amount_bands(visit_log& log, const std::vector<double>& edges, std::string column = "size_band") {
    if (edges.empty()) throw argument_error("add_amount_bands: no band edges");
    for (std::size_t i = 0; i < edges.size(); ++i)
        if (!std::isfinite(edges[i]) || (i > 0 && !(edges[i] > edges[i - 1])))
            throw argument_error(detail::message("add_amount_bands: edges must be finite and increasing, got ", edges[i],
                                                 " at position ", i));
    column = detail::lower(detail::trim(column));
    if (log.find_column(column))
        throw argument_error(detail::message("add_amount_bands: the log already has a column '", column, "'"));
    auto label = [](double v) {
        std::string s = detail::message(v);
        return s;
    };
    std::vector<std::string> names;
    names.push_back("<" + label(edges.front()));
    for (std::size_t i = 0; i + 1 < edges.size(); ++i) names.push_back(label(edges[i]) + "-" + label(edges[i + 1]));
    names.push_back(">=" + label(edges.back()));
    names.push_back("unknown");
    std::vector<std::uint32_t> codes(log.size());
    for (std::size_t first = 0; first < log.size();) {
        std::size_t last = first + 1;
        while (last < log.size() && log.deal[last] == log.deal[first]) ++last;
        double amount = std::numeric_limits<double>::quiet_NaN();
        for (std::size_t i = first; i < last; ++i)
            if (!std::isnan(log.amount[i])) amount = log.amount[i];
        const auto band = std::isnan(amount)
                              ? static_cast<std::uint32_t>(names.size() - 1)
                              : static_cast<std::uint32_t>(std::upper_bound(edges.begin(), edges.end(), amount) - edges.begin());
        for (std::size_t i = first; i < last; ++i) codes[i] = band;
        first = last;
    }
    log.extra_columns.push_back(column);
    log.extra_values.push_back(std::move(names));
    log.extra.push_back(std::move(codes));
}

/// True if a CSV stream is a stage-change log: its header has no exit-time column
/// (`exited`, `exited_at`, `end`), which every visit log has. Reads only the first line;
/// the stream is rewound.
template <class = void>
[[nodiscard]] bool is_stage_change_log(std::istream& in) {
    const auto pos = in.tellg();
    std::string line;
    std::getline(in, line);
    in.clear();
    in.seekg(pos);
    std::istringstream first(line);
    detail::csv_reader csv(first, "<header>");
    std::vector<std::string> names;
    if (!csv.next(names)) return false;
    return !detail::csv_header(names).find({"exited", "exited_at", "end", "离开时间", "退出时间", "结束时间"});
}

/// Reads a history file in either format (told apart by its header).
/// @throws error if the file cannot be opened, else as read_visit_log / read_stage_changes.
template <class = void>
[[nodiscard]] visit_log load_history(const std::string& path, history_options opt = {}) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw error(detail::message(path, ": cannot open history file"));
    opt.source = path;
    return is_stage_change_log(in) ? read_stage_changes(in, opt) : read_visit_log(in, opt);
}

/// Reads a visit-log file. @throws error if it cannot be opened, else as read_visit_log.
template <class = void>
[[nodiscard]] visit_log load_visit_log(const std::string& path, history_options opt = {}) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw error(detail::message(path, ": cannot open history file"));
    opt.source = path;
    return read_visit_log(in, opt);
}

} // namespace pipecast
