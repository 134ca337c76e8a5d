// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file forecast/calendar.hpp
/// @brief Forecasts by calendar bucket (month, quarter or year, fiscal years included), as a
/// CRM forecast screen shows them: per bucket the value already won (Closed), the value the
/// open book is expected to win in it, the simulated P10–P90, the forecast categories'
/// cumulative roll-up (Closed, Commit, Best case, Pipeline) and each owner against a quota;
/// and the per-deal rows (`--per-deal`) that `forecast`, `simulate` and `report` share.
///
/// Bucket k covers (start_k, end_k] in model time; for the open book only the part after
/// the as-of time counts: its expected value is Σ amount × (P(won within end_k − as_of) −
/// P(won within max(start_k, as_of) − as_of)), from period_forecast(); the simulated value
/// is the per-path difference of the won value at the two ends (simulate() with the bucket
/// ends as sub-periods).

#include <pipecast/data/book.hpp>
#include <pipecast/data/history.hpp>
#include <pipecast/data/history_view.hpp>
#include <pipecast/detail/csv.hpp>
#include <pipecast/error.hpp>
#include <pipecast/forecast/forecast.hpp>
#include <pipecast/model/model.hpp>
#include <pipecast/simulation/simulation.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <istream>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pipecast {

// ---------------------------------------------------------------------------------------
// Calendar periods
// ---------------------------------------------------------------------------------------

/// A calendar bucket: month, quarter or year.
enum class calendar_unit { month, quarter, year };

/// Parses "month", "quarter" or "year".
/// @throws argument_error naming the text otherwise.
template <class = void>
[[nodiscard]] calendar_unit parse_calendar_unit(std::string_view text) {
    if (text == "month") return calendar_unit::month;
    if (text == "quarter") return calendar_unit::quarter;
    if (text == "year") return calendar_unit::year;
    throw argument_error(detail::message("--period: expected month, quarter or year, got '", detail::clip(text), "'"));
}

/// Name of a calendar unit ("month", "quarter", "year").
[[nodiscard]] constexpr std::string_view to_string(calendar_unit u) noexcept {
    return u == calendar_unit::month ? "month" : u == calendar_unit::quarter ? "quarter" : "year";
}

/// One calendar period in model time units (days since 1970-01-01 / days_per_unit).
struct calendar_period {
    double start = 0.0; ///< the previous period's end
    double end = 0.0;   ///< this period's end
    std::string label;  ///< e.g. "2025-07-01 to 2025-09-30"
};

/// The calendar period an as-of time falls in, with the convention of calendar_cuts() and
/// `--cuts 2024-06-30`: a period ends at 00:00 UTC of its last day, so an as-of date that is
/// a period end (2025-06-30 for quarters) starts the next period (2025-07-01 to 2025-09-30)
/// and an as-of inside a period (2025-05-15) is `elapsed` into it.
/// @param t the as-of time (model time units since 1970-01-01)
/// @param unit month, quarter or year
/// @param fiscal_start the first month of the fiscal year, 1..12 (quarters and years only)
/// @param days_per_unit length of the model time unit in days, > 0
/// @returns start <= t < end
/// @throws argument_error for a fiscal_start outside 1..12, a non-finite t or a bad days_per_unit.
/// Example: `period_of(20269.0, calendar_unit::quarter)` (2025-06-30) gives start 2025-06-30, end 2025-09-30.
template <class = void>
[[nodiscard]] calendar_period period_of(double t, calendar_unit unit, unsigned fiscal_start = 1,
                                        double days_per_unit = 1.0) {
    namespace chr = std::chrono;
    if (fiscal_start < 1 || fiscal_start > 12)
        throw argument_error(detail::message("--fiscal-year-start: expected a month 1..12, got ", fiscal_start));
    if (!(std::isfinite(days_per_unit) && days_per_unit > 0.0))
        throw argument_error(detail::message("period_of: days_per_unit must be positive, got ", days_per_unit));
    if (!(std::isfinite(t) && std::abs(t * days_per_unit) < 1e7))
        throw argument_error(detail::message("period_of: as-of time ", t, " is not a date"));
    const int months = unit == calendar_unit::month ? 1 : unit == calendar_unit::quarter ? 3 : 12;
    const int first = unit == calendar_unit::month ? 1 : static_cast<int>(fiscal_start);
    // End of the period whose last month is index m (months since year 0, 0-based): 00:00 of its last day.
    auto end_of = [](long m) {
        const chr::year_month_day_last e{chr::year{static_cast<int>(m / 12)} / chr::month{static_cast<unsigned>(m % 12 + 1)} /
                                         chr::last};
        return static_cast<double>(chr::sys_days{e}.time_since_epoch().count());
    };
    const double day = t * days_per_unit;
    const chr::year_month_day ymd{chr::sys_days{chr::days{static_cast<long>(std::floor(day))}}};
    const long month_index = static_cast<long>(static_cast<int>(ymd.year())) * 12 + static_cast<long>(static_cast<unsigned>(ymd.month())) - 1;
    // Last month of the period containing month_index: periods start at months ≡ first-1 (mod months).
    const long offset = ((month_index - (first - 1)) % months + months) % months;
    long last = month_index - offset + months - 1;
    double end = end_of(last);
    if (end <= day + 1e-9) { // t is at (or, for the last day, past) this period's end: the next period
        last += months;
        end = end_of(last);
    }
    const double start = end_of(last - months);
    calendar_period p;
    p.start = start / days_per_unit;
    p.end = end / days_per_unit;
    p.label = format_time(p.start + 1.0 / days_per_unit, true, days_per_unit) + " to " + format_time(p.end, true, days_per_unit);
    return p;
}

/// `count` consecutive calendar periods: the one the as-of time falls in (period_of), then
/// the next ones. @throws argument_error for count 0 or more than 120, or as period_of.
template <class = void>
[[nodiscard]] std::vector<calendar_period> calendar_buckets(double as_of, calendar_unit unit, std::size_t count,
                                                            unsigned fiscal_start = 1, double days_per_unit = 1.0) {
    if (count == 0 || count > 120)
        throw argument_error(detail::message("--buckets: expected 1..120 calendar periods, got ", count));
    std::vector<calendar_period> out;
    out.push_back(period_of(as_of, unit, fiscal_start, days_per_unit));
    while (out.size() < count) out.push_back(period_of(out.back().end, unit, fiscal_start, days_per_unit));
    return out;
}

// ---------------------------------------------------------------------------------------
// Forecast categories and owner quotas
// ---------------------------------------------------------------------------------------

/// The CRM forecast categories, from the surest to the least sure (Salesforce's names).
enum class forecast_category { closed, commit, best_case, pipeline, omitted };

/// A deal's category text as a forecast category, case and separators ignored: "commit",
/// "best case" / "best_case" / "bestcase" / "upside", "closed", "omitted" / "omit"; anything
/// else (empty, "pipeline", a custom name) is pipeline.
template <class = void>
[[nodiscard]] forecast_category category_of(std::string_view text) {
    std::string s;
    for (char c : text)
        if (c != ' ' && c != '_' && c != '-') s += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    if (s == "commit" || s == "committed") return forecast_category::commit;
    if (s == "bestcase" || s == "upside") return forecast_category::best_case;
    if (s == "closed" || s == "closedwon" || s == "won") return forecast_category::closed;
    if (s == "omitted" || s == "omit") return forecast_category::omitted;
    return forecast_category::pipeline;
}

/// One owner's quota per calendar period.
struct owner_quota {
    std::string owner;
    double quota = 0.0;
};

/// Reads owner quotas: a CSV with a header naming the columns `owner` and `quota` (any
/// order, case ignored, other columns ignored), one owner a line.
/// @throws parse_error naming source:line:column for a missing column, an empty owner, a
///   quota that is not a finite number >= 0, or an owner listed twice.
template <class = void>
[[nodiscard]] std::vector<owner_quota> read_owner_quotas(std::istream& in, const std::string& source) {
    detail::csv_reader r(in, source);
    std::vector<std::string> f;
    if (!r.next(f)) throw parse_error(source, 1, 0, "empty file: expected a header with the columns owner,quota");
    std::optional<std::size_t> c_owner, c_quota;
    for (std::size_t c = 0; c < f.size(); ++c) {
        const std::string name = detail::lower(detail::trim(f[c]));
        if (name == "owner" && !c_owner) c_owner = c;
        if (name == "quota" && !c_quota) c_quota = c;
    }
    if (!c_owner || !c_quota)
        throw parse_error(source, r.line(), 0,
                          detail::message("missing column '", c_owner ? "quota" : "owner", "' (expected owner,quota)"));
    std::vector<owner_quota> out;
    while (r.next(f)) {
        const std::size_t line = r.line();
        if (*c_owner >= f.size() || *c_quota >= f.size())
            throw parse_error(source, line, 0, detail::message("expected ", std::max(*c_owner, *c_quota) + 1, " fields, got ", f.size()));
        owner_quota q;
        q.owner = std::string(detail::trim(f[*c_owner]));
        if (q.owner.empty()) throw parse_error(source, line, *c_owner + 1, "column 'owner': empty owner");
        const auto v = detail::parse_number(f[*c_quota], source, line, *c_quota + 1, "quota");
        if (!v || *v < 0.0)
            throw parse_error(source, line, *c_quota + 1,
                              detail::message("column 'quota': expected an amount >= 0, got '", detail::clip(f[*c_quota]), "'"));
        q.quota = *v;
        for (const auto& x : out)
            if (x.owner == q.owner)
                throw parse_error(source, line, *c_owner + 1, detail::message("owner '", detail::clip(q.owner), "' listed twice"));
        out.push_back(std::move(q));
    }
    return out;
}

/// read_owner_quotas() of a file. @throws argument_error when it cannot be opened.
template <class = void>
[[nodiscard]] std::vector<owner_quota> load_owner_quotas(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw argument_error(detail::message("--quotas: cannot open '", path, "'"));
    return read_owner_quotas(in, path);
}

/// Value won in a time window, in total and by owner.
struct closed_won {
    double total = 0.0;
    std::vector<std::pair<std::string, double>> by_owner; ///< order of first win; "" = no owner
};

/// Value of the deals the log shows won in (t0, t1]: visits that left to a win outcome of g
/// (by name), by the log's `owner` column when it has one.
template <class = void>
[[nodiscard]] closed_won won_between(const visit_log& log, const stage_graph& g, double t0, double t1) {
    std::vector<char> won(log.stage_names.size(), 0);
    for (std::size_t s = 0; s < won.size(); ++s)
        if (const auto k = g.find(log.stage_names[s])) won[s] = g.is_win(*k) ? 1 : 0;
    const auto owner_col = log.find_column("owner");
    closed_won c;
    for (std::size_t i = 0; i < log.size(); ++i)
        if (!log.censored(i) && won[log.next[i]] && log.exited[i] > t0 && log.exited[i] <= t1 && std::isfinite(log.amount[i])) {
            c.total += log.amount[i];
            const std::string owner = owner_col ? log.extra_values[*owner_col][log.extra[*owner_col][i]] : std::string();
            auto it = std::find_if(c.by_owner.begin(), c.by_owner.end(), [&](const auto& x) { return x.first == owner; });
            if (it == c.by_owner.end()) c.by_owner.emplace_back(owner, log.amount[i]);
            else it->second += log.amount[i];
        }
    return c;
}

// ---------------------------------------------------------------------------------------
// Per-deal rows
// ---------------------------------------------------------------------------------------

/// One open deal's forecast: the row of `--per-deal` (forecast, simulate, report).
struct deal_forecast {
    std::string id, stage, owner, category;
    std::size_t stage_index = 0;
    double age = 0.0;
    double amount = 0.0;
    double p_win = 0.0;        ///< P(win | stage, age) (the override where the deal has one)
    double p_win_within = 0.0; ///< P(won within the horizon or the rest of the period | stage, age)
    double expected_close = std::numeric_limits<double>::quiet_NaN(); ///< as_of + E[time of win | won within it] (simulated)
    bool stale = false;          ///< likely stalled (see the command's docs)
    double expected_value = 0.0; ///< amount × p_win_within
};

/// The per-deal rows of a book: p_win, p_win_within and stale per deal (book order), the
/// expected close from a simulation's deal_expected_close_time (empty: none).
/// @throws argument_error when a vector's length is not the book's.
template <class = void>
[[nodiscard]] std::vector<deal_forecast> deal_forecasts(const stage_graph& g, const book& b, double as_of,
                                                        std::span<const double> p_win,
                                                        std::span<const double> p_within,
                                                        std::span<const double> close_time,
                                                        std::span<const char> stale) {
    const std::size_t n = b.size();
    if (p_win.size() != n || p_within.size() != n || stale.size() != n || (!close_time.empty() && close_time.size() != n))
        throw argument_error(detail::message("deal_forecasts: per-deal vectors of ", p_win.size(), ", ", p_within.size(),
                                             ", ", close_time.size(), " and ", stale.size(), " values for ", n, " deals"));
    std::vector<deal_forecast> out(n);
    const auto ids = b.ids();
    const auto st = b.stages();
    for (std::size_t i = 0; i < n; ++i) {
        deal_forecast& d = out[i];
        d.id = ids[i];
        d.stage_index = st[i];
        d.stage = g.name(st[i]);
        d.owner = b.owner_names()[b.owners()[i]];
        d.category = b.category_names()[b.categories()[i]];
        d.age = b.ages()[i];
        d.amount = b.amounts()[i];
        d.p_win = p_win[i];
        d.p_win_within = p_within[i];
        if (!close_time.empty() && std::isfinite(close_time[i])) d.expected_close = as_of + close_time[i];
        d.stale = stale[i] != 0;
        d.expected_value = d.amount * d.p_win_within;
    }
    return out;
}

/// The per-deal CSV: `id,stage,age,amount,p_win,p_win_within,expected_close,stale,expected_value,owner`
/// (the first nine are the interface downstream scripts rely on), fields quoted as RFC 4180
/// (detail::append_csv_field), numbers at full precision, expected_close as a date (dated
/// times) or a number, empty when unknown; stale `true`/`false`.
template <class = void>
[[nodiscard]] std::string per_deal_csv(std::span<const deal_forecast> deals, bool dates, double days_per_unit = 1.0) {
    std::string s = "id,stage,age,amount,p_win,p_win_within,expected_close,stale,expected_value,owner\n";
    auto field = [&s](std::string_view v) { detail::append_csv_field(s, v); };
    auto num = [&s](double v) {
        if (std::isfinite(v)) s += detail::message(v);
    };
    for (const auto& d : deals) {
        field(d.id);
        s += ',';
        field(d.stage);
        s += ',';
        num(d.age);
        s += ',';
        num(d.amount);
        s += ',';
        num(d.p_win);
        s += ',';
        num(d.p_win_within);
        s += ',';
        if (std::isfinite(d.expected_close)) field(format_time(d.expected_close, dates, days_per_unit));
        s += d.stale ? ",true," : ",false,";
        num(d.expected_value);
        s += ',';
        field(d.owner);
        s += '\n';
    }
    return s;
}

// ---------------------------------------------------------------------------------------
// The calendar forecast
// ---------------------------------------------------------------------------------------

/// What calendar_forecast() computes. Times in the model's time unit.
struct calendar_options {
    double as_of = 0.0;              ///< the forecast date (model time units since 1970-01-01)
    calendar_unit unit = calendar_unit::quarter;
    unsigned fiscal_start = 1;       ///< first month of the fiscal year, 1..12
    double days_per_unit = 1.0;      ///< the model's time unit in days
    std::size_t buckets = 4;         ///< the current period and the next ones, 1..120
    /// Value won in the current bucket before the as-of time (e.g. won_between(log, g,
    /// bucket start, as_of)): Closed, by owner when known.
    closed_won closed;
    /// Quota per bucket for the whole book (0: the sum of the owner quotas, or none).
    double quota = 0.0;
    std::vector<owner_quota> owner_quotas; ///< per owner, per bucket
    /// Run the Monte Carlo simulation (P10–P90 per bucket, P(quota), expected close dates).
    bool simulate = true;
    /// Paths, seed, threads, correlation, arrivals, progress of the simulation: horizon,
    /// sub_period_ends and quotas are set here (the last bucket's end and the bucket ends).
    simulation_options simulation = [] {
        simulation_options o;
        o.paths = 4000;
        return o;
    }();
};

/// The cumulative forecast-category roll-up of a bucket: each level adds the expected
/// value (amount × P(won in the bucket)) of the open deals of the next category.
struct category_rollup {
    double closed = 0.0;    ///< won in the bucket before the as-of time (+ open deals marked closed: none in a clean book)
    double commit = 0.0;    ///< closed + the commit deals
    double best_case = 0.0; ///< commit + the best-case deals
    double pipeline = 0.0;  ///< best_case + the pipeline deals (every category but omitted)
};

/// One owner in one bucket.
struct owner_bucket {
    std::string owner;           ///< "" for deals without an owner
    std::size_t deals = 0;       ///< open deals of the owner
    double closed = 0.0;         ///< won in the bucket before the as-of time
    double expected = 0.0;       ///< Σ amount × P(won in the bucket) of the owner's open deals
    double quota = std::numeric_limits<double>::quiet_NaN();       ///< NaN: no quota given
    double attainment = std::numeric_limits<double>::quiet_NaN();  ///< closed / quota
    double projected_attainment = std::numeric_limits<double>::quiet_NaN(); ///< (closed + expected) / quota
    category_rollup rollup;
};

/// One calendar bucket of the forecast.
struct bucket_forecast {
    calendar_period period;
    double from = 0.0, to = 0.0; ///< the bucket's part after the as-of time, as offsets from it: [from, to]
    double closed = 0.0;         ///< won before the as-of time (the current bucket only)
    double expected = 0.0;       ///< Σ amount × (P(won within to) − P(won within from)), the open book
    double quota = 0.0;          ///< 0: none
    /// Simulated value won in the bucket after the as-of time (open book, and new deals when
    /// the simulation has arrivals): mean, quantiles (P10/P50/P90 by default), P(closed +
    /// value >= quota) in p_quota when a quota is given. Empty without the simulation.
    std::optional<outcome_summary> simulated;
    category_rollup rollup;
    std::vector<owner_bucket> owners;
};

/// The calendar forecast of a book.
struct calendar_forecast_result {
    double as_of = 0.0;
    calendar_unit unit = calendar_unit::quarter;
    unsigned fiscal_start = 1;
    std::vector<bucket_forecast> buckets;
    /// Per bucket k, per deal: P(won within buckets[k].to | stage, age) (cumulative), book order.
    std::vector<std::vector<double>> deal_won_by;
    std::optional<simulation_result> simulation; ///< horizon: the last bucket's end − as_of
    /// Per bucket, per completed path: the simulated value won in the bucket (the
    /// simulation's sub_period values differenced path by path).
    std::vector<std::vector<double>> bucket_paths;
};

/// Forecasts the book by calendar bucket: the current period (the one `o.as_of` falls in)
/// and the next `o.buckets − 1`. See the file comment for the quantities; the roll-up puts
/// open deals by their category (category_of): closed and commit into Commit, best case
/// into Best case, pipeline and the rest into Pipeline, omitted into none.
/// @throws argument_error as calendar_buckets(), period_forecast() and simulate(), or for a
///   negative or non-finite quota.
/// Complexity: one renewal table (or matrix exponential per bucket) plus a pass over the
///   book per bucket; the simulation's paths × deals.
template <class = void>
[[nodiscard]] calendar_forecast_result calendar_forecast(const model& m, const book& b, const calendar_options& o) {
    if (!(std::isfinite(o.quota) && o.quota >= 0.0))
        throw argument_error(detail::message("calendar forecast: quota must be >= 0 and finite, got ", o.quota));
    const stage_graph& g = m.graph;
    calendar_forecast_result r;
    r.as_of = o.as_of;
    r.unit = o.unit;
    r.fiscal_start = o.fiscal_start;
    const auto periods = calendar_buckets(o.as_of, o.unit, o.buckets, o.fiscal_start, o.days_per_unit);
    const std::size_t nb = periods.size(), n = b.size();

    // P(won within to_k) per deal, per bucket end.
    period_forecast_options po;
    po.per_deal = true;
    const double last_end = periods.back().end - o.as_of;
    std::optional<win_time_table> table;
    const absorption_analysis a = analyse(g);
    if (!is_markov(g)) table = win_time_distribution(g, last_end, 0);
    std::vector<double> prev(n, 0.0);
    double total_quota = o.quota;
    if (total_quota == 0.0)
        for (const auto& q : o.owner_quotas) total_quota += q.quota;

    // Owners: the quota file's order, then the book's, then owners with wins only.
    std::vector<std::string> owners;
    auto add_owner = [&owners](const std::string& s) {
        if (std::find(owners.begin(), owners.end(), s) == owners.end()) owners.push_back(s);
    };
    for (const auto& q : o.owner_quotas) add_owner(q.owner);
    bool any_owner = !owners.empty();
    for (std::size_t i = 0; i < n; ++i) any_owner = any_owner || !b.owner_names()[b.owners()[i]].empty();
    for (const auto& c : o.closed.by_owner) any_owner = any_owner || !c.first.empty();
    if (any_owner) { // every deal's owner ("" too) has a line, so that the lines add up
        for (std::size_t i = 0; i < n; ++i) add_owner(b.owner_names()[b.owners()[i]]);
        for (const auto& c : o.closed.by_owner) add_owner(c.first);
    }
    std::vector<std::size_t> owner_of(n, 0);
    for (std::size_t i = 0; i < n && !owners.empty(); ++i)
        owner_of[i] = static_cast<std::size_t>(std::find(owners.begin(), owners.end(), b.owner_names()[b.owners()[i]]) - owners.begin());
    std::vector<forecast_category> cat(n);
    for (std::size_t i = 0; i < n; ++i) cat[i] = category_of(b.category_names()[b.categories()[i]]);

    for (std::size_t k = 0; k < nb; ++k) {
        bucket_forecast bf;
        bf.period = periods[k];
        bf.from = std::max(periods[k].start, o.as_of) - o.as_of;
        bf.to = periods[k].end - o.as_of;
        bf.closed = k == 0 ? o.closed.total : 0.0;
        bf.quota = total_quota;
        const period_forecast_result q = table ? period_forecast(g, b, bf.to, *table, a, true) : period_forecast(g, b, bf.to, po);
        std::vector<double> cur = q.deal_probability;
        if (cur.size() != n) cur.assign(n, 0.0); // an empty book
        double commit = 0.0, best = 0.0, pipe = 0.0;
        std::vector<owner_bucket> ob(owners.size());
        for (std::size_t j = 0; j < owners.size(); ++j) ob[j].owner = owners[j];
        for (std::size_t i = 0; i < n; ++i) {
            const double v = b.amounts()[i] * std::max(0.0, cur[i] - prev[i]);
            bf.expected += v;
            double* level = cat[i] == forecast_category::closed || cat[i] == forecast_category::commit ? &commit
                            : cat[i] == forecast_category::best_case                                   ? &best
                            : cat[i] == forecast_category::pipeline                                    ? &pipe
                                                                                                       : nullptr;
            if (level) *level += v;
            if (!owners.empty()) {
                owner_bucket& x = ob[owner_of[i]];
                ++x.deals;
                x.expected += v;
                if (cat[i] == forecast_category::closed || cat[i] == forecast_category::commit) x.rollup.commit += v;
                else if (cat[i] == forecast_category::best_case) x.rollup.best_case += v;
                else if (cat[i] == forecast_category::pipeline) x.rollup.pipeline += v;
            }
        }
        bf.rollup.closed = bf.closed;
        bf.rollup.commit = bf.rollup.closed + commit;
        bf.rollup.best_case = bf.rollup.commit + best;
        bf.rollup.pipeline = bf.rollup.best_case + pipe;
        for (auto& x : ob) {
            if (k == 0)
                for (const auto& c : o.closed.by_owner)
                    if (c.first == x.owner) x.closed = c.second;
            for (const auto& qq : o.owner_quotas)
                if (qq.owner == x.owner) x.quota = qq.quota;
            if (x.quota > 0.0) {
                x.attainment = x.closed / x.quota;
                x.projected_attainment = (x.closed + x.expected) / x.quota;
            }
            const double c1 = x.closed + x.rollup.commit, b1 = c1 + x.rollup.best_case;
            x.rollup = {x.closed, c1, b1, b1 + x.rollup.pipeline};
        }
        bf.owners = std::move(ob);
        r.buckets.push_back(std::move(bf));
        r.deal_won_by.push_back(cur);
        prev = std::move(cur);
    }

    if (o.simulate) {
        simulation_options so = o.simulation;
        so.horizon = last_end;
        so.sub_period_ends.clear();
        for (const auto& bf : r.buckets) so.sub_period_ends.push_back(bf.to);
        so.quotas.clear();
        const simulation_engine engine(m, b, so.threads);
        const simulation_paths out = engine.run_paths(so, 0, so.paths);
        r.simulation = engine.combine(so, std::span<const simulation_paths>(&out, 1));
        const std::vector<std::size_t> done = out.completed_paths();
        r.bucket_paths.assign(nb, {});
        for (std::size_t k = 0; k < nb; ++k) {
            auto& v = r.bucket_paths[k];
            v.reserve(done.size());
            for (std::size_t p : done) {
                const std::size_t row = (p - out.first) * nb;
                v.push_back(out.sub_value[row + k] - (k ? out.sub_value[row + k - 1] : 0.0));
            }
            simulation_options sk = so;
            if (r.buckets[k].quota > 0.0) sk.quotas = {std::max(0.0, r.buckets[k].quota - r.buckets[k].closed)};
            r.buckets[k].simulated = detail::summarise(v, sk);
        }
    }
    return r;
}

} // namespace pipecast
