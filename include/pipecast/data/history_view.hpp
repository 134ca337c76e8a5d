// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file data/history_view.hpp
/// @brief Views of a deal history: the history as known at a past time (`as_of`), the
/// book of deals open at a time (`book_at`), and the two data-artefact cleanings of real
/// CRM logs: click-through visits merged away (`merge_click_throughs`) and after-the-fact
/// bookings left out (`drop_after_the_fact`). Each returns a new visit_log with the counts
/// of what it changed, so a caller can report them; nothing is dropped silently.
///
/// Durations in options are written like `60s`, `30min`, `12h`, `1d`, `2w` or a plain
/// number in the model time unit (`parse_duration`).

#include <pipecast/data/book.hpp>
#include <pipecast/data/history.hpp>
#include <pipecast/detail/csv.hpp>
#include <pipecast/error.hpp>
#include <pipecast/estimation/estimation.hpp>
#include <pipecast/model/stage_graph.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pipecast {

/// Parses a duration: a number followed by a unit, `s`/`sec`, `m`/`min`, `h`, `d`, `w`,
/// `mo`/`month`, `y`/`year` (seconds, minutes, hours, days, weeks, months of 365.2425/12 days,
/// years of 365.2425 days), or a plain number already in the model time unit.
/// @param text the option value, e.g. "60s", "1d", "180d", "2.5h", "90"
/// @param days_per_unit length of the model time unit in days (see days_per_unit())
/// @param what the option's name, for the error message
/// @returns the duration in model time units (>= 0)
/// @throws argument_error naming `what` and the text when it is not a finite non-negative
///   number with a known unit.
/// Example: `parse_duration("60s") == 60.0 / 86400.0`.
template <class = void>
[[nodiscard]] double parse_duration(std::string_view text, double days_per_unit = 1.0,
                                    std::string_view what = "duration") {
    const std::string_view s = detail::trim(text);
    auto bad = [&](std::string_view why) -> double {
        throw argument_error(detail::message(what, ": bad duration '", s, "' (", why,
                                             "; expected e.g. 60s, 30min, 12h, 1d, 2w, 6mo, 1y or a number)"));
    };
    if (!(std::isfinite(days_per_unit) && days_per_unit > 0.0)) bad("days_per_unit must be positive");
    if (s.empty()) return bad("empty");
    double v = 0.0;
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || ptr == s.data()) return bad("no number");
    if (!std::isfinite(v) || v < 0.0) return bad("must be finite and >= 0");
    const std::string unit = detail::lower(detail::trim(std::string_view(ptr, static_cast<std::size_t>(s.data() + s.size() - ptr))));
    static const std::map<std::string, double, std::less<>> seconds_per{
        {"s", 1.0},          {"sec", 1.0},        {"secs", 1.0},   {"second", 1.0}, {"seconds", 1.0},
        {"m", 60.0},         {"min", 60.0},       {"mins", 60.0},  {"minute", 60.0}, {"minutes", 60.0},
        {"h", 3600.0},       {"hour", 3600.0},    {"hours", 3600.0},
        {"d", 86400.0},      {"day", 86400.0},    {"days", 86400.0},
        {"w", 604800.0},     {"week", 604800.0},  {"weeks", 604800.0},
        {"mo", 2629746.0},   {"month", 2629746.0}, {"months", 2629746.0},
        {"y", 31556952.0},   {"yr", 31556952.0},  {"year", 31556952.0}, {"years", 31556952.0}};
    if (unit.empty()) return v;
    const auto it = seconds_per.find(unit);
    if (it == seconds_per.end()) return bad(detail::message("unknown unit '", unit, "'"));
    return v * it->second / 86400.0 / days_per_unit;
}

/// The history as known at a past time (see as_of()).
struct as_of_view {
    visit_log log;                   ///< the visits known at the time; end_time = the time
    double time = 0.0;               ///< the as-of time
    std::size_t visits_dropped = 0;  ///< visits entered after the time
    std::size_t deals_dropped = 0;   ///< deals created after the time
    std::size_t visits_censored = 0; ///< visits that ended after the time, now open (censored at it)
};

/// A history with click-through visits merged away (see merge_click_throughs()).
struct merged_view {
    visit_log log;
    double min_dwell = 0.0;       ///< the threshold used (model time unit)
    std::size_t merged = 0;       ///< short visits merged into the previous visit of their deal
    std::size_t dropped_first = 0; ///< short first visits dropped (the deal starts at the next stage)
};

/// A history without after-the-fact bookings (see drop_after_the_fact()).
struct filtered_view {
    visit_log log;
    double max_time = 0.0;        ///< the threshold used (model time unit)
    std::size_t deals_dropped = 0;
    std::size_t visits_dropped = 0;
};

/// The deals open at a time as a book (see book_at()).
struct book_view {
    book deals;                          ///< the open deals, for the graph given
    double time = 0.0;                   ///< the time of the book
    std::vector<std::uint32_t> deal;     ///< per book deal: its deal code in the log
    std::vector<std::size_t> visit;      ///< per book deal: the visit open at the time
    std::size_t skipped = 0;             ///< open deals in stages the graph does not know
    std::vector<std::string> skipped_stages; ///< those stages' names (each once)
    std::size_t missing_amount = 0;      ///< deals without an amount (booked at 0)
};

namespace detail {

/// A new log with the same stage dictionary, extra columns, source and kind as `src` and
/// no visits (deal codes are assigned anew by add_visit).
template <class = void>
[[nodiscard]] visit_log empty_like(const visit_log& src) {
    visit_log out;
    for (const auto& name : src.stage_names) (void)out.stage_code(name);
    out.stage_open = src.stage_open;
    out.extra_columns = src.extra_columns;
    out.extra_values = src.extra_values;
    out.extra.resize(src.extra.size());
    out.end_time = src.end_time;
    out.dates = src.dates;
    out.source = src.source;
    out.skipped = src.skipped;
    out.repeated_rows = src.repeated_rows;
    return out;
}

/// Appends visit i of `src` to `out` with the given next stage and exit time.
template <class = void>
void copy_visit(visit_log& out, const visit_log& src, std::size_t i, std::uint32_t next, double exited) {
    out.deal.push_back(out.deal_code(src.deal_ids[src.deal[i]]));
    out.stage.push_back(src.stage[i]);
    out.next.push_back(next);
    out.entered.push_back(src.entered[i]);
    out.exited.push_back(exited);
    out.amount.push_back(src.amount[i]);
    out.line.push_back(src.line[i]);
    for (std::size_t c = 0; c < src.extra.size(); ++c) out.extra[c].push_back(src.extra[c][i]);
}

/// One past the last visit of the deal starting at `first`.
template <class = void>
[[nodiscard]] std::size_t deal_end(const visit_log& log, std::size_t first) {
    std::size_t last = first + 1;
    while (last < log.size() && log.deal[last] == log.deal[first]) ++last;
    return last;
}

/// Won flag per stage code of the log: the named outcomes, or by name (looks_won).
template <class = void>
[[nodiscard]] std::vector<char> won_stages(const visit_log& log, const std::vector<std::string>& won) {
    std::vector<char> w(log.stage_names.size(), 0);
    for (std::size_t s = 0; s < w.size(); ++s) {
        if (log.stage_open[s]) continue;
        const auto& nm = log.stage_names[s];
        w[s] = won.empty() ? looks_won(nm) : std::find(won.begin(), won.end(), nm) != won.end();
    }
    return w;
}

/// The first and last entry time of a log (NaN, NaN when empty).
template <class = void>
[[nodiscard]] double first_entry(const visit_log& log) {
    double t = std::numeric_limits<double>::infinity();
    for (double e : log.entered) t = std::min(t, e);
    return std::isfinite(t) ? t : std::numeric_limits<double>::quiet_NaN();
}

} // namespace detail

/// The history as it was known at time t: visits entered after t are dropped (so are
/// deals created after t), visits that ended after t become open visits censored at t
/// (exit and next stage removed), and the log's end_time becomes t. Fitting this view is
/// what a forecaster at time t could have done (the backtest's refit).
/// @param log a finished visit log (sorted by deal and time, as the readers return it)
/// @param t the as-of time, in the log's time unit, within [first entry, log end]
/// @throws argument_error naming the log and the time when t is not finite or lies outside
///   the log (before its first entry or after its end).
/// Complexity: O(n) for n visits.
/// Example: `auto v = as_of(log, detail::parse_iso8601("2024-06-30").value()); fit_history(v.log);`
template <class = void>
[[nodiscard]] as_of_view as_of(const visit_log& log, double t) {
    const double start = detail::first_entry(log);
    if (!std::isfinite(t))
        throw argument_error(detail::message("as_of: ", log.source, ": time ", t, " is not finite"));
    if (log.empty() || t < start || t > log.end_time)
        throw argument_error(detail::message("as_of: ", log.source, ": time ", t, " is outside the log [", start, ", ",
                                             log.end_time, "]"));
    as_of_view v{detail::empty_like(log), t};
    v.log.end_time = t;
    for (std::size_t first = 0; first < log.size();) {
        const std::size_t last = detail::deal_end(log, first);
        if (log.entered[first] > t) {
            ++v.deals_dropped;
            v.visits_dropped += last - first;
            first = last;
            continue;
        }
        for (std::size_t i = first; i < last; ++i) {
            if (log.entered[i] > t) {
                ++v.visits_dropped;
                continue;
            }
            if (log.censored(i) || log.exited[i] > t) {
                if (!log.censored(i)) ++v.visits_censored;
                detail::copy_visit(v.log, log, i, no_stage, std::numeric_limits<double>::quiet_NaN());
            } else {
                detail::copy_visit(v.log, log, i, log.next[i], log.exited[i]);
            }
        }
        first = last;
    }
    return v;
}

/// The history with click-through visits merged away: a finished visit shorter than
/// `min_dwell` that follows another visit of its deal is merged into it (A → B (30 s) → C
/// becomes A → C, A now ending when B ended); a short first visit that leads to another
/// open stage is dropped (the deal starts in that stage). Open (censored) visits and a
/// deal's only visit are kept: a deal created and closed at once is an after-the-fact
/// booking (drop_after_the_fact), not a click-through.
/// @param min_dwell the threshold, > 0, in the log's time unit (e.g. parse_duration("60s"))
/// @throws argument_error if min_dwell is not positive and finite.
/// Complexity: O(n).
/// Example: `auto m = merge_click_throughs(log, parse_duration("60s")); m.merged;`
template <class = void>
[[nodiscard]] merged_view merge_click_throughs(const visit_log& log, double min_dwell) {
    if (!(std::isfinite(min_dwell) && min_dwell > 0.0))
        throw argument_error(detail::message("merge_click_throughs: min_dwell must be positive and finite, got ", min_dwell));
    merged_view v{detail::empty_like(log), min_dwell};
    auto is_short = [&](std::size_t i) { return !log.censored(i) && log.exited[i] - log.entered[i] < min_dwell; };
    for (std::size_t first = 0; first < log.size();) {
        const std::size_t last = detail::deal_end(log, first);
        std::size_t begin = first;
        // Short first visits into another open stage: the deal starts later.
        while (begin + 1 < last && is_short(begin) && log.stage_open[log.next[begin]]) {
            ++v.dropped_first;
            ++begin;
        }
        std::optional<std::size_t> cur; // the visit being extended, not yet written
        std::uint32_t cur_next = no_stage;
        double cur_exit = 0.0;
        auto flush = [&] {
            if (cur) detail::copy_visit(v.log, log, *cur, cur_next, cur_exit);
        };
        for (std::size_t i = begin; i < last; ++i) {
            // A short visit joins the visit before it; after A → B (short) → A, the second
            // visit of A continues the first.
            const bool returns = cur && cur_next == log.stage[*cur] && log.stage[i] == log.stage[*cur];
            if (cur && (is_short(i) || returns)) {
                if (is_short(i)) ++v.merged;
                cur_next = log.next[i];
                cur_exit = log.exited[i];
                continue;
            }
            flush();
            cur = i;
            cur_next = log.next[i];
            cur_exit = log.exited[i];
        }
        flush();
        first = last;
    }
    return v;
}

/// The history without after-the-fact bookings: deals created and closed won within
/// `max_time` (entered in the CRM already decided, never really in the pipeline) are left
/// out entirely.
/// @param max_time the threshold, > 0, in the log's time unit (e.g. parse_duration("1d"))
/// @param won outcomes that count as wins (empty: by name, as fit_history decides)
/// @throws argument_error if max_time is not positive and finite.
/// Complexity: O(n).
/// Example: `auto f = drop_after_the_fact(log, parse_duration("1d")); f.deals_dropped;`
template <class = void>
[[nodiscard]] filtered_view drop_after_the_fact(const visit_log& log, double max_time,
                                                const std::vector<std::string>& won = {}) {
    if (!(std::isfinite(max_time) && max_time > 0.0))
        throw argument_error(detail::message("drop_after_the_fact: max must be positive and finite, got ", max_time));
    filtered_view v{detail::empty_like(log), max_time};
    const std::vector<char> is_won = detail::won_stages(log, won);
    for (std::size_t first = 0; first < log.size();) {
        const std::size_t last = detail::deal_end(log, first);
        const std::size_t end = last - 1;
        const bool booked = !log.censored(end) && is_won[log.next[end]] && log.exited[end] - log.entered[first] <= max_time;
        if (booked) {
            ++v.deals_dropped;
            v.visits_dropped += last - first;
        } else {
            for (std::size_t i = first; i < last; ++i) detail::copy_visit(v.log, log, i, log.next[i], log.exited[i]);
        }
        first = last;
    }
    return v;
}

/// What a log shows of two artefacts of real CRM logs (see scan_artefacts()).
struct artefact_scan {
    std::size_t finished_visits = 0; ///< visits with an exit
    std::size_t short_visits = 0;    ///< of them, shorter than min_dwell (click-through candidates)
    std::size_t won_deals = 0;       ///< deals whose last visit leads to a win
    std::size_t quick_wins = 0;      ///< of them, created and won within max_time (after-the-fact candidates)
    bool sub_day_times = false;      ///< some time has a time of day (not whole days)

    /// Sub-minute visits are an artefact of this log, not chance: the times resolve the
    /// time of day (in a log of dates a same-day move is the resolution, not a click) and at
    /// least 5 and 0.5% of the finished visits are that short. Dwell distributions with means
    /// of days put far less mass below a minute (b2b6's history: 3 of 53,899).
    [[nodiscard]] bool click_throughs() const noexcept {
        return sub_day_times && short_visits >= 5 && 200 * short_visits >= finished_visits;
    }
    /// Deals created and won within max_time are bookings of decided deals, not chance: at
    /// least 5 and 5% of the wins (a pipeline whose deals pass several stages rarely wins
    /// one within a day; real exports showed 39%).
    [[nodiscard]] bool after_the_fact() const noexcept { return quick_wins >= 5 && 20 * quick_wins >= won_deals; }
};

/// Scans a log for click-through visits and after-the-fact bookings, as `fit` does to turn
/// merge_click_throughs / drop_after_the_fact on by itself when the log shows them (the
/// rules are artefact_scan::click_throughs() and after_the_fact()).
/// @param min_dwell visits shorter than this count as short (log time unit, > 0)
/// @param max_time deals created and won within this count as quick wins (log time unit, > 0)
/// @param days_per_unit days in the log's time unit (to tell a time of day)
/// @param won outcomes that count as wins (empty: by name, as fit_history decides)
/// @throws argument_error if a threshold is not positive and finite.
/// Complexity: O(n).
template <class = void>
[[nodiscard]] artefact_scan scan_artefacts(const visit_log& log, double min_dwell, double max_time,
                                           double days_per_unit = 1.0, const std::vector<std::string>& won = {}) {
    for (const double x : {min_dwell, max_time, days_per_unit})
        if (!(std::isfinite(x) && x > 0.0))
            throw argument_error(detail::message("scan_artefacts: thresholds must be positive and finite, got ", x));
    artefact_scan r;
    const std::vector<char> is_won = detail::won_stages(log, won);
    auto time_of_day = [&](double t) {
        const double d = t * days_per_unit;
        return std::isfinite(d) && std::abs(d - std::round(d)) > 1e-6; // more than ~0.1 s off midnight
    };
    for (std::size_t first = 0; first < log.size();) {
        const std::size_t last = detail::deal_end(log, first);
        for (std::size_t i = first; i < last; ++i) {
            r.sub_day_times = r.sub_day_times || time_of_day(log.entered[i]);
            if (log.censored(i)) continue;
            ++r.finished_visits;
            if (log.exited[i] - log.entered[i] < min_dwell) ++r.short_visits;
        }
        const std::size_t end = last - 1;
        if (!log.censored(end) && is_won[log.next[end]]) {
            ++r.won_deals;
            if (log.exited[end] - log.entered[first] <= max_time) ++r.quick_wins;
        }
        first = last;
    }
    return r;
}

/// The deals open at time t as a book on graph g: each deal's visit with entered <= t <
/// exit (or still open), its stage, age t − entered, amount (the visit row's; 0 and counted
/// when missing) and owner (the `owner` column when the log has one). Deals in stages g
/// does not know are skipped and reported.
/// @param log a finished visit log; @param g the graph of the book; @param t the time
/// @throws argument_error naming the log and the time when t is not finite.
/// Complexity: O(n).
/// Example: `auto b = book_at(log, m.graph, cut); period_forecast(m.graph, b.deals, 90);`
template <class = void>
[[nodiscard]] book_view book_at(const visit_log& log, const stage_graph& g, double t) {
    if (!std::isfinite(t)) throw argument_error(detail::message("book_at: ", log.source, ": time ", t, " is not finite"));
    book_view v{book(g), t, {}, {}, 0, {}, 0};
    std::vector<std::optional<std::size_t>> index(log.stage_names.size());
    for (std::size_t s = 0; s < log.stage_names.size(); ++s)
        for (std::size_t k = 0; k < g.open_count(); ++k)
            if (g.name(k) == log.stage_names[s]) index[s] = k;
    const auto owner_col = log.find_column("owner");
    std::vector<char> reported(log.stage_names.size(), 0);
    for (std::size_t i = 0; i < log.size(); ++i) {
        if (log.entered[i] > t) continue;
        const double exit = log.censored(i) ? std::numeric_limits<double>::infinity() : log.exited[i];
        if (!(exit > t)) continue;
        if (log.censored(i) && t > log.end_time) continue; // unknown after the log's end
        const std::uint32_t s = log.stage[i];
        if (!index[s]) {
            ++v.skipped;
            if (!reported[s]) v.skipped_stages.push_back(log.stage_names[s]);
            reported[s] = 1;
            continue;
        }
        double amount = log.amount[i];
        if (!(std::isfinite(amount) && amount >= 0.0)) {
            ++v.missing_amount;
            amount = 0.0;
        }
        const std::string_view owner = owner_col ? std::string_view(log.extra_values[*owner_col][log.extra[*owner_col][i]])
                                                 : std::string_view{};
        v.deals.add(log.deal_ids[log.deal[i]], *index[s], amount, t - log.entered[i], std::nullopt, owner);
        v.deal.push_back(log.deal[i]);
        v.visit.push_back(i);
    }
    return v;
}

/// Formats a time of a log for people: an ISO date ("2024-03-31", with "THH:MM" when not
/// at midnight) when the log's times are dates (days since 1970-01-01 times
/// `days_per_unit`), else the number.
template <class = void>
[[nodiscard]] std::string format_time(double t, bool dates, double days_per_unit = 1.0) {
    if (!dates || !std::isfinite(t)) return detail::message(t);
    const double days = t * days_per_unit;
    const double whole = std::floor(days + 1e-9);
    const std::chrono::year_month_day ymd{std::chrono::sys_days{std::chrono::days{static_cast<long>(whole)}}};
    char buf[32];
    const auto minutes = static_cast<long>(std::lround((days - whole) * 1440.0));
    if (minutes <= 0 || minutes >= 1440)
        std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                      static_cast<unsigned>(ymd.day()));
    else
        std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02ld:%02ld", static_cast<int>(ymd.year()),
                      static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()), minutes / 60, minutes % 60);
    return buf;
}

} // namespace pipecast
