// pipecast — header-only sales-pipeline forecasting library.
#pragma once

/// @file io/results_json.hpp
/// @brief JSON of the results: nlohmann ADL hooks `to_json(json&, const T&)` for the result
/// types, and the documents the CLI prints with `--json` (docs/cli.md).
///
/// Two kinds of hook, both templated on the JSON type (nlohmann::json, or
/// nlohmann::ordered_json to keep the keys in their reading order):
///
/// - a result alone: `nlohmann::ordered_json j = pipecast::weighted_forecast(g, b);` works for
///   weighted_forecast_result, age_aware_forecast_result, period_forecast_result,
///   outcome_summary, simulation_result, exact_summary, exact_result, velocity_terms,
///   history_fit, kpi_report, deal_forecast and scenario. Stages are named where the result
///   names them.
/// - a document: a result with what its report says besides (the model's name, currency and
///   time unit, the as-of date, the run's settings). `forecast_document`, `funnel_document`,
///   `simulation_document`, `exact_document`, `fit_document`, `calendar_document`,
///   `per_deal_document` and `sweep_document` give exactly the JSON of `pipecast
///   forecast|funnel|simulate|fit|sweep --json` and of its `calendar` and `per_deal` keys (the
///   CLI builds its output from them), keys in the same order with ordered_json.
///
/// The documents hold references: build one where the results live and convert it at once
/// (`nlohmann::ordered_json j = pipecast::forecast_document{m, f, aa};`).
///
/// Numbers are written at full precision; a quantity that does not exist (no quota, an
/// undefined rate) is null, never NaN (JSON has none).

#include <pipecast/data/history_view.hpp>
#include <pipecast/estimation/estimation.hpp>
#include <pipecast/forecast/calendar.hpp>
#include <pipecast/forecast/forecast.hpp>
#include <pipecast/funnel/funnel.hpp>
#include <pipecast/io/model_json.hpp>
#include <pipecast/kpi.hpp>
#include <pipecast/model/model.hpp>
#include <pipecast/simulation/exact_distribution.hpp>
#include <pipecast/simulation/simulation.hpp>
#include <pipecast/simulation/sweep.hpp>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace pipecast {

namespace detail {

/// 0.1 -> "p10", 0.975 -> "p97.5", 0.5 -> "p50": the key of a quantile level.
template <class = void>
[[nodiscard]] std::string quantile_key(double q) {
    std::ostringstream os;
    os.precision(10);
    os << 'p' << 100.0 * q;
    return os.str();
}

/// A number, or null where it is not finite.
template <class Json>
[[nodiscard]] Json number_or_null(double v) {
    return std::isfinite(v) ? Json(v) : Json(nullptr);
}

/// An optional number, or null.
template <class Json>
[[nodiscard]] Json optional_number(const std::optional<double>& v) {
    return v ? Json(*v) : Json(nullptr);
}

/// {"p10": ..., "p50": ...} of quantile levels and values.
template <class Json>
[[nodiscard]] Json quantiles_object(const std::vector<double>& levels, const std::vector<double>& values) {
    Json q = Json::object();
    for (std::size_t i = 0; i < levels.size() && i < values.size(); ++i) q[quantile_key(levels[i])] = values[i];
    return q;
}

} // namespace detail

// --- forecast.hpp ----------------------------------------------------------------------------

/// {stage, count, amount, win_probability, weighted, overridden}.
template <class Json>
    requires nlohmann::detail::is_basic_json<Json>::value
void to_json(Json& j, const stage_forecast& x) {
    j = Json{{"stage", x.stage},       {"count", x.count},       {"amount", x.amount},
             {"win_probability", x.win_probability}, {"weighted", x.weighted}, {"overridden", x.overridden}};
}

/// {key, count, amount, weighted, overridden}.
template <class Json>
    requires nlohmann::detail::is_basic_json<Json>::value
void to_json(Json& j, const group_forecast& x) {
    j = Json{{"key", x.key}, {"count", x.count}, {"amount", x.amount}, {"weighted", x.weighted}, {"overridden", x.overridden}};
}

/// {deals, currency, total_amount, weighted_total, overridden, by_stage, by_owner, by_category}.
template <class Json>
    requires nlohmann::detail::is_basic_json<Json>::value
void to_json(Json& j, const weighted_forecast_result& x) {
    j = Json::object();
    j["deals"] = x.count;
    j["currency"] = x.currency;
    j["total_amount"] = x.total_amount;
    j["weighted_total"] = x.weighted_total;
    j["overridden"] = x.overridden;
    j["by_stage"] = x.by_stage;
    j["by_owner"] = x.by_owner;
    j["by_category"] = x.by_category;
}

template <class Json>
    requires nlohmann::detail::is_basic_json<Json>::value
void to_json(Json& j, const stage_age_forecast& x) {
    j = Json{{"stage", x.stage},
             {"count", x.count},
             {"amount", x.amount},
             {"win_probability", x.win_probability},
             {"weighted", x.weighted},
             {"age_aware_weighted", x.age_weighted},
             {"expected_stalled", x.expected_stalled},
             {"stalled_amount", x.stalled_amount},
             {"likely_stalled", x.likely_stalled},
             {"likely_stalled_amount", x.likely_stalled_amount},
             {"overridden", x.overridden}};
}

template <class Json>
    requires nlohmann::detail::is_basic_json<Json>::value
void to_json(Json& j, const group_age_forecast& x) {
    j = Json{{"key", x.key},
             {"count", x.count},
             {"amount", x.amount},
             {"weighted", x.weighted},
             {"age_aware_weighted", x.age_weighted},
             {"expected_stalled", x.expected_stalled},
             {"likely_stalled", x.likely_stalled},
             {"likely_stalled_amount", x.likely_stalled_amount}};
}

/// The age-aware forecast and its stalled deals (the per-deal vectors left out).
template <class Json>
    requires nlohmann::detail::is_basic_json<Json>::value
void to_json(Json& j, const age_aware_forecast_result& x) {
    j = Json::object();
    j["deals"] = x.count;
    j["currency"] = x.currency;
    j["total_amount"] = x.total_amount;
    j["weighted_total"] = x.weighted_total;
    j["age_aware_total"] = x.age_weighted_total;
    j["expected_stalled"] = x.expected_stalled;
    j["stalled_amount"] = x.stalled_amount;
    j["likely_stalled"] = x.likely_stalled;
    j["likely_stalled_amount"] = x.likely_stalled_amount;
    j["stalled_threshold"] = x.stalled_threshold;
    j["overridden"] = x.overridden;
    j["by_stage"] = x.by_stage;
    j["by_owner"] = x.by_owner;
    j["by_category"] = x.by_category;
}

template <class Json>
    requires nlohmann::detail::is_basic_json<Json>::value
void to_json(Json& j, const stage_period_forecast& x) {
    j = Json{{"stage", x.stage}, {"count", x.count}, {"amount", x.amount}, {"expected", x.expected}};
}

template <class Json>
    requires nlohmann::detail::is_basic_json<Json>::value
void to_json(Json& j, const group_period_forecast& x) {
    j = Json{{"key", x.key}, {"count", x.count}, {"amount", x.amount}, {"expected", x.expected}};
}

/// {horizon, expected, method, step, error_estimate, by_stage, ...} (the CLI's within_horizon
/// object, plus the deal count, amount, currency and the groups).
template <class Json>
    requires nlohmann::detail::is_basic_json<Json>::value
void to_json(Json& j, const period_forecast_result& x) {
    j = Json{{"horizon", x.horizon},
             {"expected", x.expected},
             {"method", std::string(to_string(x.method))},
             {"step", x.step},
             {"error_estimate", x.error_estimate}};
    j["by_stage"] = x.by_stage;
    j["deals"] = x.count;
    j["total_amount"] = x.total_amount;
    j["currency"] = x.currency;
    j["max_deal_error"] = x.max_deal_error;
    j["by_owner"] = x.by_owner;
    j["by_category"] = x.by_category;
}

/// The report of `pipecast forecast --json`: the weighted forecast, the age-aware forecast
/// beside it and, with a horizon, the value expected within it (docs/cli.md).
struct forecast_document {
    const model& m;
    const weighted_forecast_result& weighted;
    const age_aware_forecast_result& age_aware;
    const period_forecast_result* within = nullptr; ///< the horizon's forecast, or none
    std::optional<std::string> as_of = std::nullopt; ///< the date ages are measured to, as given
};

template <class Json>
    requires nlohmann::detail::is_basic_json<Json>::value
void to_json(Json& j, const forecast_document& x) {
    const auto& m = x.m;
    const auto& f = x.weighted;
    const auto& aa = x.age_aware;
    const period_forecast_result* q = x.within;
    j = Json::object();
    j["model"] = m.name;
    j["currency"] = f.currency.empty() ? m.currency : f.currency;
    j["time_unit"] = m.time_unit;
    if (x.as_of) j["as_of"] = *x.as_of;
    j["deals"] = f.count;
    j["total_amount"] = f.total_amount;
    j["weighted_total"] = f.weighted_total;
    j["weighted_basis"] = "crm: amount x P(win | stage), whatever the time in stage";
    j["age_aware_total"] = aa.age_weighted_total;
    j["age_aware_basis"] = "amount x P(win | stage, time in stage)";
    j["branched"] = m.graph.has_branches();
    j["expected_stalled"] = aa.expected_stalled;
    j["stalled_amount"] = aa.stalled_amount;
    j["likely_stalled"] = aa.likely_stalled;
    j["likely_stalled_amount"] = aa.likely_stalled_amount;
    j["stalled_threshold"] = aa.stalled_threshold;
    j["overridden"] = f.overridden;
    j["by_stage"] = Json::array();
    for (std::size_t s = 0; s < f.by_stage.size(); ++s) {
        const auto& a = f.by_stage[s];
        Json line = {{"stage", a.stage},           {"count", a.count},       {"amount", a.amount},
                     {"win_probability", a.win_probability}, {"weighted", a.weighted}, {"overridden", a.overridden}};
        const auto& y = aa.by_stage[s];
        line["age_aware_weighted"] = y.age_weighted;
        line["age_aware_win_probability"] = y.amount > 0.0 ? y.age_weighted / y.amount : a.win_probability;
        line["expected_stalled"] = y.expected_stalled;
        line["stalled_amount"] = y.stalled_amount;
        line["likely_stalled"] = y.likely_stalled;
        line["likely_stalled_amount"] = y.likely_stalled_amount;
        if (q) line["expected_within_horizon"] = q->by_stage[s].expected;
        j["by_stage"].push_back(std::move(line));
    }
    auto groups = [](const char* key, const std::vector<group_forecast>& gs, const std::vector<group_age_forecast>& ages,
                     const std::vector<group_period_forecast>* within) {
        Json out = Json::array();
        for (std::size_t k = 0; k < gs.size(); ++k) {
            Json line = {{key, gs[k].key},         {"count", gs[k].count},       {"amount", gs[k].amount},
                         {"weighted", gs[k].weighted}, {"overridden", gs[k].overridden}};
            line["age_aware_weighted"] = ages[k].age_weighted;
            line["expected_stalled"] = ages[k].expected_stalled;
            line["likely_stalled"] = ages[k].likely_stalled;
            line["likely_stalled_amount"] = ages[k].likely_stalled_amount;
            if (within) line["expected_within_horizon"] = (*within)[k].expected;
            out.push_back(std::move(line));
        }
        return out;
    };
    j["by_owner"] = groups("owner", f.by_owner, aa.by_owner, q ? &q->by_owner : nullptr);
    j["by_category"] = groups("category", f.by_category, aa.by_category, q ? &q->by_category : nullptr);
    if (q) {
        Json w = {{"horizon", q->horizon},
                  {"expected", q->expected},
                  {"method", std::string(to_string(q->method))},
                  {"step", q->step},
                  {"error_estimate", q->error_estimate}};
        w["by_stage"] = Json::array();
        for (const auto& a : q->by_stage)
            w["by_stage"].push_back(Json{{"stage", a.stage}, {"count", a.count}, {"amount", a.amount}, {"expected", a.expected}});
        j["within_horizon"] = std::move(w);
    }
}

// --- funnel.hpp ------------------------------------------------------------------------------

/// {open_opportunities, win_rate, deal_size, cycle_length, velocity, per_period}.
template <class Json>
    requires nlohmann::detail::is_basic_json<Json>::value
void to_json(Json& j, const velocity_terms& x) {
    j = Json{{"open_opportunities", x.open_opportunities},
             {"win_rate", x.win_rate},
             {"deal_size", x.deal_size},
             {"cycle_length", x.cycle_length},
             {"velocity", x.velocity},
             {"per_period", x.per_period}};
}

/// The report of `pipecast funnel --json`: the ideal funnel of a model, and the book against it.
struct funnel_document {
    const model& m;
    const ideal_funnel_result& funnel;
};

template <class Json>
    requires nlohmann::detail::is_basic_json<Json>::value
void to_json(Json& j, const funnel_document& x) {
    using detail::optional_number;
    const stage_graph& g = x.m.graph;
    const ideal_funnel_result& f = x.funnel;
    Json stages = Json::array();
    for (const auto& s : f.stages) {
        Json js = {{"stage", s.name},
                   {"win_probability", s.win_probability},
                   {"unreachable", s.unreachable},
                   {"reached", s.reached},
                   {"expected_visits", s.expected_visits},
                   {"mean_dwell", s.mean_dwell},
                   {"entering_per_period", s.entering_per_period},
                   {"in_stage", s.in_stage},
                   {"in_stage_value", s.in_stage_value},
                   {"weighted_value", s.weighted_value},
                   {"coverage", optional_number<Json>(s.coverage)},
                   {"mean_time_to_win", optional_number<Json>(s.mean_time_to_win)},
                   {"time_to_win_quantile", optional_number<Json>(s.time_to_win_quantile)},
                   {"win_within_remaining", s.win_within_remaining},
                   {"can_close_mean", s.can_close_mean},
                   {"can_close_quantile", s.can_close_quantile},
                   {"hold_now", optional_number<Json>(s.hold_now)},
                   {"hold_now_untimed", optional_number<Json>(s.hold_now_untimed)},
                   {"coverage_alone", optional_number<Json>(s.coverage_alone)},
                   {"enter_by_mean", optional_number<Json>(s.enter_by_mean)},
                   {"enter_by_quantile", optional_number<Json>(s.enter_by_quantile)}};
        js["branched"] = g.branched(s.index);
        double stalled = 0.0;
        if (g.branched(s.index))
            for (const auto& b : g.branches(s.index)) stalled += b.stalled ? b.probability : 0.0;
        js["stalled_share"] = stalled;
        if (f.gap) {
            const auto& sg = f.gap->stages[s.index];
            js["actual_in_stage"] = sg.actual_count;
            js["actual_value"] = sg.actual_value;
            js["gap"] = sg.shortfall_count; // ideal - actual deals: positive = short
            js["gap_value"] = sg.shortfall_value;
            js["relative_gap"] = optional_number<Json>(sg.relative_shortfall);
            js["actual_weighted_value"] = sg.weighted_value;
            js["actual_in_period_value"] = sg.in_period_value;
            js["period_impact"] = sg.period_impact;
            js["pipeline_impact"] = sg.pipeline_impact;
        }
        stages.push_back(std::move(js));
    }
    const auto& c = f.coverage;
    Json coverage = {{"required", optional_number<Json>(c.required)},
                     {"steady_state", c.steady_state},
                     {"win_rate", c.win_rate},
                     {"inverse_win_rate", c.inverse_win_rate},
                     {"cycle_length", c.cycle_length},
                     {"cycle_over_period", c.cycle_over_period},
                     {"rule_of_thumb", {c.rule_of_thumb_low, c.rule_of_thumb_high}},
                     {"actual", optional_number<Json>(c.actual)}};
    Json velocity = {{"definition", "open opportunities x P(win | entry) x deal size / E[time to close | entry] "
                                    "(all outcomes; the same as pipecast kpi)"},
                     {"required", f.velocity.required},
                     {"ideal", Json(f.velocity.ideal)},
                     {"actual", f.velocity.actual ? Json(*f.velocity.actual) : Json(nullptr)},
                     {"gap_ratio", optional_number<Json>(f.velocity.gap_ratio)}};
    Json levers = Json::array();
    for (const auto& l : f.levers)
        levers.push_back(Json{{"lever", std::string(to_string(l.lever))},
                              {"step", l.step},
                              {"velocity_before", l.velocity_before},
                              {"velocity_after", l.velocity_after},
                              {"new_deals_per_period_after", l.new_deals_per_period_after},
                              {"pipeline_count_after", l.pipeline_count_after},
                              {"pipeline_value_after", l.pipeline_value_after},
                              {"in_period_forecast_after", optional_number<Json>(l.in_period_forecast_after)},
                              {"needed", optional_number<Json>(l.needed)},
                              {"extra_deals", optional_number<Json>(l.extra_deals)}});
    j = Json{{"model", x.m.name},
             {"time_unit", x.m.time_unit},
             {"currency", x.m.currency},
             {"quota", f.quota},
             {"period", f.period},
             {"deal_size", f.deal_size},
             {"entry_stage", g.name(f.entry_stage)},
             {"elapsed", f.elapsed},
             {"remaining_time", f.remaining_time},
             {"won_to_date", f.won_to_date},
             {"remaining_quota", f.remaining_quota},
             {"quantile", f.quantile},
             {"deals_to_win", f.deals_to_win},
             {"deals_to_win_whole", f.deals_to_win_whole},
             {"remaining_deals_to_win", f.remaining_deals_to_win},
             {"entry_win_probability", f.entry_win_probability},
             {"new_deals_per_period", f.new_deals_per_period},
             {"cycle_length", f.cycle_length},
             {"mean_time_to_win", f.mean_time_to_win},
             {"stages", std::move(stages)},
             {"pipeline", {{"count", f.pipeline_count}, {"value", f.pipeline_value}, {"weighted_value", f.weighted_value}}},
             {"coverage", std::move(coverage)},
             {"velocity", std::move(velocity)},
             {"levers", std::move(levers)}};
    if (f.gap) {
        const auto& gp = *f.gap;
        auto stage_name = [&](const std::optional<std::size_t>& s) { return s ? Json(g.name(*s)) : Json(nullptr); };
        j["book"] = {{"count", gp.actual_count},
                     {"value", gp.actual_value},
                     {"weighted_forecast", gp.weighted_forecast},
                     {"in_period_forecast", gp.in_period_forecast},
                     {"forecast_gap", gp.forecast_gap},
                     {"in_period_gap", gp.in_period_gap},
                     {"bottleneck", stage_name(gp.bottleneck)},
                     {"pipeline_bottleneck", stage_name(gp.pipeline_bottleneck)},
                     {"cheapest_lever", gp.cheapest_lever ? Json(std::string(to_string(*gp.cheapest_lever))) : Json(nullptr)}};
    }
}

// --- simulation.hpp and exact_distribution.hpp ---------------------------------------------

/// {mean, stderr, sd, min, max, quantiles: {p10, ...}} (quotas and histogram: in the
/// documents, where their settings are named).
template <class Json>
    requires nlohmann::detail::is_basic_json<Json>::value
void to_json(Json& j, const outcome_summary& x) {
    j = Json::object();
    j["mean"] = x.mean;
    j["stderr"] = x.standard_error;
    j["sd"] = x.sd;
    j["min"] = x.min;
    j["max"] = x.max;
    j["quantiles"] = detail::quantiles_object<Json>(x.quantile_levels, x.quantiles);
}

/// {lower, width, counts}.
template <class Json>
    requires nlohmann::detail::is_basic_json<Json>::value
void to_json(Json& j, const simulation_histogram& x) { j = Json{{"lower", x.lower}, {"width", x.width}, {"counts", x.counts}}; }

/// As outcome_summary, stderr 0 (no Monte Carlo noise).
template <class Json>
    requires nlohmann::detail::is_basic_json<Json>::value
void to_json(Json& j, const exact_summary& x) {
    j = Json::object();
    j["mean"] = x.mean;
    j["stderr"] = 0.0;
    j["sd"] = x.sd;
    j["min"] = x.min;
    j["max"] = x.max;
    j["quantiles"] = detail::quantiles_object<Json>(x.quantile_levels, x.quantiles);
}

namespace detail {

/// [{quota, p}, ...] of a summary's quotas.
template <class Json, class Summary>
[[nodiscard]] Json quota_list(const Summary& v) {
    Json all = Json::array();
    for (std::size_t i = 0; i < v.quotas.size() && i < v.p_quota.size(); ++i)
        all.push_back(Json{{"quota", v.quotas[i]}, {"p", v.p_quota[i]}});
    return all;
}

/// [{mean, ..., end}, ...] of the sub-periods.
template <class Json, class Summary>
[[nodiscard]] Json sub_period_list(const std::vector<double>& ends, const std::vector<Summary>& values) {
    Json sp = Json::array();
    for (std::size_t i = 0; i < ends.size() && i < values.size(); ++i) {
        Json e = values[i];
        e["end"] = ends[i];
        sp.push_back(std::move(e));
    }
    return sp;
}

/// [{stage, expected_wins, expected_value}, ...] of the open stages.
template <class Json>
[[nodiscard]] Json stage_list(const stage_graph& g, const std::vector<double>& wins, const std::vector<double>& value) {
    Json st = Json::array();
    for (std::size_t s = 0; s < g.open_count() && s < wins.size() && s < value.size(); ++s)
        st.push_back(Json{{"stage", g.name(s)}, {"expected_wins", wins[s]}, {"expected_value", value[s]}});
    return st;
}

} // namespace detail

/// A simulation alone (stages by index: a simulation_document names them).
template <class Json>
    requires nlohmann::detail::is_basic_json<Json>::value
void to_json(Json& j, const simulation_result& x) {
    j = Json::object();
    j["status"] = x.status == simulation_status::completed ? "completed" : "cancelled";
    j["horizon"] = detail::number_or_null<Json>(x.horizon);
    j["paths"] = x.paths;
    j["paths_requested"] = x.paths_requested;
    j["deals"] = x.deals;
    j["overridden"] = x.overridden;
    j["seed"] = x.seed;
    j["won_value"] = x.won_value;
    j["quotas"] = detail::quota_list<Json>(x.won_value);
    j["won_count"] = x.won_count;
    j["sub_periods"] = detail::sub_period_list<Json>(x.sub_period_ends, x.sub_period_value);
    j["stage_expected_wins"] = x.stage_expected_wins;
    j["stage_expected_value"] = x.stage_expected_value;
    j["arrivals"] = {{"expected_count", x.arrivals_expected_count},
                     {"expected_wins", x.arrivals_expected_wins},
                     {"expected_value", x.arrivals_expected_value},
                     {"deal_paths", x.arrival_deal_paths}};
    j["histogram"] = x.won_value.histogram;
    j["deal_paths"] = x.deal_paths;
    j["capped_deal_paths"] = x.capped_deal_paths;
    j["elapsed_seconds"] = x.elapsed_seconds;
    j["deal_paths_per_second"] = x.deal_paths_per_second();
}

/// An exact distribution alone (stages by index: an exact_document names them).
template <class Json>
    requires nlohmann::detail::is_basic_json<Json>::value
void to_json(Json& j, const exact_result& x) {
    j = Json::object();
    j["method"] = x.method;
    j["detail"] = x.detail;
    j["horizon"] = x.horizon;
    j["deals"] = x.deals;
    j["overridden"] = x.overridden;
    j["won_value"] = x.won_value;
    j["quotas"] = detail::quota_list<Json>(x.won_value);
    j["won_count"] = x.won_count;
    j["sub_periods"] = detail::sub_period_list<Json>(x.sub_period_ends, x.sub_period_value);
    j["stage_expected_wins"] = x.stage_expected_wins;
    j["stage_expected_value"] = x.stage_expected_value;
    j["arrivals"] = {{"expected_count", x.arrivals_expected_count},
                     {"expected_wins", x.arrivals_expected_wins},
                     {"expected_value", x.arrivals_expected_value}};
    j["histogram"] = {{"lower", x.won_value.hist_lower}, {"width", x.won_value.hist_width},
                      {"probabilities", x.won_value.histogram}};
    j["error_bound"] = x.error_bound;
    j["probability_error"] = x.probability_error;
    j["lattice"] = {{"step", x.step}, {"cells", x.cells}, {"quadrature_nodes", x.quadrature_nodes}};
    j["elapsed_seconds"] = x.elapsed_seconds;
}

/// The correlation a run used and where it came from ("option", "model" or "none").
struct correlation_used {
    double sigma = 0.0;             ///< the largest σ of any stage
    std::string source = "none";
    std::vector<double> by_stage;   ///< per open stage (empty: `sigma` for every stage)
};

/// The report of `pipecast simulate --json` (Monte Carlo).
struct simulation_document {
    const model& m;
    const simulation_result& result;
    correlation_used correlation{};
    unsigned threads = 1;                            ///< threads the run used
    bool arrivals = false;                           ///< new deals were simulated
    std::optional<std::string> as_of = std::nullopt; ///< the date ages are measured to, as given
};

namespace detail {

template <class Json>
void document_head(Json& j, const model& m, const std::optional<std::string>& as_of) {
    j["model"] = m.name;
    j["currency"] = m.currency;
    j["time_unit"] = m.time_unit;
    if (as_of) j["as_of"] = *as_of;
}

template <class Json>
void correlation_keys(Json& j, const model& m, const correlation_used& c) {
    j["correlation"] = c.sigma;
    j["correlation_source"] = c.source;
    if (!c.by_stage.empty()) {
        Json bs = Json::object();
        for (std::size_t s = 0; s < c.by_stage.size(); ++s) bs[m.graph.name(s)] = c.by_stage[s];
        j["correlation_by_stage"] = std::move(bs);
    }
}

template <class Json, class Summary>
void value_keys(Json& j, const Summary& v) {
    j.update(Json(v)); // mean, stderr, sd, min, max, quantiles of the won value
    j["won_value"] = v; // the same, nested as won_count is (docs/cli.md)
    if (!v.quotas.empty() && !v.p_quota.empty()) {
        j["quota"] = v.quotas.front();
        j["p_quota"] = v.p_quota.front();
        j["quotas"] = quota_list<Json>(v);
    }
}

} // namespace detail

template <class Json>
    requires nlohmann::detail::is_basic_json<Json>::value
void to_json(Json& j, const simulation_document& x) {
    const simulation_result& r = x.result;
    j = Json::object();
    detail::document_head(j, x.m, x.as_of);
    j["status"] = r.status == simulation_status::completed ? "completed" : "cancelled";
    j["horizon"] = detail::number_or_null<Json>(r.horizon);
    j["paths"] = r.paths;
    j["deals"] = r.deals;
    j["overridden"] = r.overridden;
    j["seed"] = r.seed;
    j["threads"] = x.threads;
    detail::correlation_keys(j, x.m, x.correlation);
    detail::value_keys(j, r.won_value);
    j["won_count"] = r.won_count;
    if (!r.sub_period_ends.empty()) j["sub_periods"] = detail::sub_period_list<Json>(r.sub_period_ends, r.sub_period_value);
    j["stages"] = detail::stage_list<Json>(x.m.graph, r.stage_expected_wins, r.stage_expected_value);
    if (x.arrivals)
        j["arrivals"] = {{"expected_count", r.arrivals_expected_count},
                         {"expected_wins", r.arrivals_expected_wins},
                         {"expected_value", r.arrivals_expected_value},
                         {"deal_paths", r.arrival_deal_paths}};
    j["histogram"] = r.won_value.histogram;
    j["deal_paths"] = r.deal_paths;
    j["capped_deal_paths"] = r.capped_deal_paths;
    j["elapsed_seconds"] = r.elapsed_seconds;
    j["deal_paths_per_second"] = r.deal_paths_per_second();
    j["method"] = "mc";
    j["error_bound"] = nullptr; // Monte Carlo: see stderr
}

/// The report of `pipecast simulate --method exact --json`: the keys of a simulation_document
/// (stderr 0, paths 0), plus the error bounds and the lattice.
struct exact_document {
    const model& m;
    const exact_result& result;
    correlation_used correlation{};
    std::uint64_t seed = 1;        ///< the seed asked for (unused by the exact method)
    std::size_t paths = 10000;     ///< the paths asked for: histogram counts are the expected paths per bin
    bool arrivals = false;
    std::optional<std::string> as_of = std::nullopt;
};

template <class Json>
    requires nlohmann::detail::is_basic_json<Json>::value
void to_json(Json& j, const exact_document& x) {
    const exact_result& r = x.result;
    j = Json::object();
    detail::document_head(j, x.m, x.as_of);
    j["status"] = "completed";
    j["horizon"] = r.horizon;
    j["paths"] = 0;
    j["deals"] = r.deals;
    j["overridden"] = r.overridden;
    j["seed"] = x.seed;
    j["threads"] = 1;
    detail::correlation_keys(j, x.m, x.correlation);
    const auto& v = r.won_value;
    detail::value_keys(j, v);
    j["won_count"] = r.won_count;
    if (!r.sub_period_ends.empty()) j["sub_periods"] = detail::sub_period_list<Json>(r.sub_period_ends, r.sub_period_value);
    j["stages"] = detail::stage_list<Json>(x.m.graph, r.stage_expected_wins, r.stage_expected_value);
    if (x.arrivals)
        j["arrivals"] = {{"expected_count", r.arrivals_expected_count},
                         {"expected_wins", r.arrivals_expected_wins},
                         {"expected_value", r.arrivals_expected_value},
                         {"deal_paths", 0}};
    // counts: the expected number of paths per bin (the Monte Carlo shape);
    // probabilities: the exact bin probabilities.
    std::vector<std::uint64_t> counts;
    for (double p : v.histogram) counts.push_back(static_cast<std::uint64_t>(std::llround(p * static_cast<double>(x.paths))));
    j["histogram"] = {{"lower", v.hist_lower}, {"width", v.hist_width}, {"counts", counts}, {"probabilities", v.histogram}};
    j["deal_paths"] = 0;
    j["elapsed_seconds"] = r.elapsed_seconds;
    j["deal_paths_per_second"] = 0;
    j["method"] = "exact";
    j["error_bound"] = r.error_bound;
    j["probability_error"] = r.probability_error;
    j["lattice"] = {{"step", r.step}, {"cells", r.cells}, {"quadrature_nodes", r.quadrature_nodes}};
}

// --- estimation.hpp ------------------------------------------------------------------------

namespace detail {

/// The dwell as {dist, parameters..., mean}; an empirical (Kaplan–Meier) dwell lists its
/// support size instead of every point.
template <class Json>
[[nodiscard]] Json fitted_dwell(const dwell_distribution& d) {
    if (d.family() == dwell_family::empirical)
        return Json{{"dist", "empirical"}, {"points", d.values().size()}, {"mean", d.mean()}, {"sd", d.sd()}};
    Json j = Json(to_json(d));
    j["mean"] = d.mean(); // every family (the exact lognormal form is written as mu, sigma)
    switch (d.family()) {
    case dwell_family::gamma:
    case dwell_family::weibull: j["scale"] = d.scale(); break;
    case dwell_family::lognormal:
        j["mu"] = d.log_mu();
        j["sigma"] = d.log_sigma();
        break;
    default: break;
    }
    return j;
}

} // namespace detail

/// The report of `pipecast fit --json` for one fit (the CLI adds source, skipped, segments
/// and written): `dates` says whether the log's times are dates (start and end are written
/// as dates, else as times).
struct fit_document {
    const history_fit& fit;
    bool dates = false;
};

template <class Json>
    requires nlohmann::detail::is_basic_json<Json>::value
void to_json(Json& j, const fit_document& x) {
    using detail::number_or_null;
    const history_fit& fit = x.fit;
    auto num = [](double v) { return number_or_null<Json>(v); };
    Json stages = Json::array();
    for (const auto& s : fit.stages) {
        Json tr = Json::object(), est = Json::array();
        for (const auto& t : s.transitions) {
            tr[t.to] = t.probability;
            est.push_back(Json{{"to", t.to},
                               {"count", t.count},
                               {"probability", t.probability},
                               {"mle", num(t.mle)},
                               {"se", t.se},
                               {"lower", t.lower},
                               {"upper", t.upper}});
        }
        Json fits = Json::array();
        for (const auto& f : s.fits) {
            Json params = Json::object();
            for (const auto& p : f.parameters) params[p.name] = {{"value", num(p.value)}, {"se", num(p.se)}};
            fits.push_back(Json{{"family", std::string(to_string(f.family))},
                                {"status", std::string(to_string(f.status))},
                                {"iterations", f.iterations},
                                {"log_likelihood", num(f.log_likelihood)},
                                {"aic", num(f.aic)},
                                {"parameters", params},
                                {"mean", num(f.mean)},
                                {"mean_se", num(f.mean_se)}});
        }
        Json js = {{"stage", s.name},
                   {"visits", s.visits},
                   {"exits", s.exits},
                   {"censored", s.censored},
                   {"transitions", tr},
                   {"transition_estimates", est},
                   {"dwell", s.dwell ? detail::fitted_dwell<Json>(*s.dwell) : Json(nullptr)},
                   {"dwell_source", s.dwell_source},
                   {"best_family", s.best ? Json(std::string(to_string(s.fits[*s.best].family))) : Json(nullptr)},
                   {"fits", fits},
                   {"kaplan_meier",
                    {{"median", num(s.km.median)}, {"restricted_mean", s.km.restricted_mean}, {"leftover", s.km.leftover},
                     {"last_time", s.km.last_time}, {"event_times", s.km.time.size()}}},
                   {"naive_mean", num(s.naive_mean)}};
        if (s.dwell) js["dwell"]["source"] = s.dwell_source;
        if (s.branched) {
            const auto& be = *s.branched;
            Json br = Json::array();
            for (const auto& b : be.branches) {
                Json jb = {{"to", b.to},
                           {"probability", b.probability},
                           {"se", num(b.se)},
                           {"stalled", b.stalled},
                           {"dwell", b.dwell ? detail::fitted_dwell<Json>(*b.dwell) : Json(nullptr)},
                           {"family", b.family},
                           {"aic", num(b.aic)},
                           {"events", b.events}};
                if (b.family != "aalen_johansen") jb["dwell_mean_se"] = num(b.fit.mean_se);
                br.push_back(std::move(jb));
            }
            js["branches"] = br;
            js["branch_fit"] = {{"status", std::string(to_string(be.status))},
                                {"iterations", be.iterations},
                                {"log_likelihood", num(be.log_likelihood)},
                                {"aic", num(be.aic)},
                                {"stall_share", be.stalled_share()},
                                {"note", be.note}};
        }
        stages.push_back(std::move(js));
    }
    Json outcomes = Json::array();
    for (const auto& o : fit.outcomes) outcomes.push_back(Json{{"name", o.name}, {"win", o.win}});
    j = Json{{"visits", fit.visits},          {"deals", fit.deals},
             {"start_time", fit.start_time},  {"end_time", fit.end_time},
             {"time_unit", fit.time_unit},    {"entry_stage", fit.entry_stage},
             {"arrival_rate", num(fit.arrival_rate)}, {"outcomes", outcomes},
             {"stages", stages}};
    j["model_kind"] = std::string(to_string(fit.kind));
    // The log span as dates (or times, for a log of plain numbers), beside start/end_time.
    j["start"] = format_time(fit.start_time, x.dates, days_per_unit(fit.time_unit));
    j["end"] = format_time(fit.end_time, x.dates, days_per_unit(fit.time_unit));
    Json arrivals = Json::array();
    for (const auto& a : fit.arrivals) arrivals.push_back(Json{{"stage", a.stage}, {"deals", a.deals}, {"rate", num(a.rate)}});
    j["arrivals"] = arrivals;
    if (fit.deal_size) {
        const auto& d = *fit.deal_size;
        j["deal_size"] = {{"dist", d.is_empirical() ? "empirical" : "lognormal"},
                          {"median", d.median()},
                          {"sigma", d.sigma()},
                          {"mean", d.mean()},
                          {"deals", fit.deal_size_count}};
        if (d.is_empirical()) j["deal_size"]["values"] = d.values().size();
    } else {
        j["deal_size"] = nullptr;
    }
    if (fit.overdispersion) {
        const auto& o = *fit.overdispersion;
        j["overdispersion"] = {{"sigma", o.sigma},
                               {"stage", o.stage},
                               {"periods", o.periods},
                               {"period", o.period},
                               {"raw_variance", num(o.raw_variance)},
                               {"binomial_variance", num(o.binomial_variance)},
                               {"mean_win_share", num(o.mean_win_share)}};
    } else {
        j["overdispersion"] = nullptr;
    }
    Json so = Json::array();
    for (const auto& o : fit.stage_overdispersion) so.push_back(Json{{"stage", o.stage}, {"sigma", o.sigma}, {"periods", o.periods}});
    j["stage_overdispersion"] = so;
}

/// A fit alone: as fit_document with start and end written as times (a fit does not know
/// whether its log was dated; fit_document{fit, log.dates} writes dates).
template <class Json>
    requires nlohmann::detail::is_basic_json<Json>::value
void to_json(Json& j, const history_fit& x) { j = Json(fit_document{x, false}); }

// --- kpi.hpp -------------------------------------------------------------------------------

/// The report of `pipecast kpi --json` (the CLI adds source, skipped and deals_source).
template <class Json>
    requires nlohmann::detail::is_basic_json<Json>::value
void to_json(Json& j, const kpi_report& x) {
    const kpi_report& k = x;
    auto num = [](double v) { return detail::number_or_null<Json>(v); };
    Json stages = Json::array();
    for (const auto& s : k.stages)
        stages.push_back(Json{{"stage", s.stage},
                              {"visits", s.visits},
                              {"exits", s.exits},
                              {"censored", s.censored},
                              {"next_stage", s.next_stage},
                              {"conversion_to_next", num(s.conversion_to_next)},
                              {"win_probability", num(s.win_probability)},
                              {"loss_rate", num(s.loss_rate)},
                              {"loss_share", num(s.loss_share)},
                              {"mean_time", num(s.mean_time)},
                              {"median_time", num(s.median_time)},
                              {"naive_mean_time", num(s.naive_mean_time)},
                              {"time_share", num(s.time_share)},
                              {"stalled_share", num(s.stalled_share)},
                              {"longest_won_stay", num(s.longest_won_stay)}});
    Json stale = Json::array();
    for (const auto& d : k.stale)
        stale.push_back(Json{{"id", d.id},
                             {"stage", d.stage},
                             {"age", d.age},
                             {"threshold", num(d.threshold)},
                             {"over", num(d.over)},
                             {"ratio", num(d.ratio)},
                             {"amount", num(d.amount)},
                             {"stalled_probability", num(d.stalled_probability)},
                             {"win_probability", num(d.win_probability)},
                             {"likely_stalled", d.likely_stalled},
                             {"older_than_wins", d.older_than_wins}});
    j = Json{{"deals", k.deals},
             {"won", k.won},
             {"lost", k.lost},
             {"open", k.open},
             {"win_rate", num(k.win_rate)},
             {"win_rate_by_value", num(k.win_rate_by_value)},
             {"closed_win_rate", num(k.closed_win_rate)},
             {"closed_win_rate_by_value", num(k.closed_win_rate_by_value)},
             {"value_win_rate_note", k.value_win_rate_note.empty() ? Json(nullptr) : Json(k.value_win_rate_note)},
             {"lost_without_amount", k.lost_without_amount},
             {"average_won_deal", num(k.average_won_deal)},
             {"cycle_length",
              {{"count", k.cycle.count},
               {"mean", num(k.cycle.mean)},
               {"median", num(k.cycle.median)},
               {"p10", num(k.cycle.p10)},
               {"p25", num(k.cycle.p25)},
               {"p75", num(k.cycle.p75)},
               {"p90", num(k.cycle.p90)},
               {"model_mean", num(k.cycle.model_mean)}}},
             {"open_opportunities", k.open_opportunities},
             {"open_value", k.open_value},
             {"velocity", num(k.velocity)},
             {"velocity_terms",
              {{"definition", "open opportunities x P(win | entry) x average open deal / E[time to close | entry] "
                              "(all outcomes; the same as pipecast funnel)"},
               {"open_opportunities", k.velocity_detail.open_opportunities},
               {"win_rate", num(k.velocity_detail.win_rate)},
               {"deal_size", num(k.velocity_detail.deal_size)},
               {"cycle_length", num(k.velocity_detail.cycle_length)}}},
             {"time_unit", k.time_unit},
             {"stale_quantile", k.stale_quantile},
             {"stalled_threshold", k.stalled_threshold},
             {"stale_rule", "P(stalled | stage, age) >= stalled_threshold, or age > the stage's longest stay of a won deal"},
             {"stale_count", k.stale.size()},
             {"stale", stale},
             {"bottleneck",
              {{"loss_stage", k.bottleneck.loss_stage},
               {"loss_share", num(k.bottleneck.loss_share)},
               {"stall_stage", k.bottleneck.stall_stage},
               {"time_share", num(k.bottleneck.time_share)},
               {"stall_ratio", num(k.bottleneck.stall_ratio)}}},
             {"stages", stages}};
}

// --- calendar.hpp --------------------------------------------------------------------------

/// {closed, commit, best_case, pipeline}.
template <class Json>
    requires nlohmann::detail::is_basic_json<Json>::value
void to_json(Json& j, const category_rollup& x) {
    j = Json::object();
    j["closed"] = x.closed;
    j["commit"] = x.commit;
    j["best_case"] = x.best_case;
    j["pipeline"] = x.pipeline;
}

/// The calendar forecast as the CLI's key `calendar`: {"period", "fiscal_year_start",
/// "as_of", "buckets": [...]}, times as dates (`days_per_unit`: the model's time unit).
struct calendar_document {
    const calendar_forecast_result& result;
    double days_per_unit = 1.0;
};

template <class Json>
    requires nlohmann::detail::is_basic_json<Json>::value
void to_json(Json& j, const calendar_document& x) {
    const calendar_forecast_result& r = x.result;
    auto when = [&](double t) { return format_time(t, true, x.days_per_unit); };
    j = Json::object();
    j["period"] = std::string(to_string(r.unit));
    j["fiscal_year_start"] = r.fiscal_start;
    j["as_of"] = when(r.as_of);
    j["buckets"] = Json::array();
    for (const auto& b : r.buckets) {
        Json e;
        e["label"] = b.period.label;
        e["start"] = when(b.period.start);
        e["end"] = when(b.period.end);
        e["closed"] = b.closed;
        e["expected"] = b.expected;
        e["quota"] = b.quota > 0.0 ? Json(b.quota) : Json(nullptr);
        if (b.simulated) {
            const auto& s = *b.simulated;
            Json v;
            v["mean"] = s.mean;
            v["stderr"] = s.standard_error;
            v["quantiles"] = detail::quantiles_object<Json>(s.quantile_levels, s.quantiles);
            v["p_quota"] = s.p_quota.empty() ? Json(nullptr) : Json(s.p_quota.front());
            e["simulated"] = std::move(v); // the value won in the period after the as-of date (add closed for the total)
        }
        e["rollup"] = b.rollup;
        e["owners"] = Json::array();
        for (const auto& o : b.owners) {
            Json y;
            y["owner"] = o.owner;
            y["deals"] = o.deals;
            y["closed"] = o.closed;
            y["expected"] = o.expected;
            y["quota"] = detail::number_or_null<Json>(o.quota);
            y["attainment"] = detail::number_or_null<Json>(o.attainment);
            y["projected_attainment"] = detail::number_or_null<Json>(o.projected_attainment);
            y["rollup"] = o.rollup;
            e["owners"].push_back(std::move(y));
        }
        j["buckets"].push_back(std::move(e));
    }
}

/// One per-deal row: {id, stage, age, amount, p_win, p_win_within, expected_close, stale,
/// expected_value, owner} (expected_close in model time, null where never won; a
/// per_deal_document writes it as a date).
template <class Json>
    requires nlohmann::detail::is_basic_json<Json>::value
void to_json(Json& j, const deal_forecast& x) {
    j = Json::object();
    j["id"] = x.id;
    j["stage"] = x.stage;
    j["age"] = x.age;
    j["amount"] = x.amount;
    j["p_win"] = x.p_win;
    j["p_win_within"] = x.p_win_within;
    j["expected_close"] = detail::number_or_null<Json>(x.expected_close);
    j["stale"] = x.stale;
    j["expected_value"] = x.expected_value;
    j["owner"] = x.owner;
}

/// The per-deal rows as the CLI's key `per_deal` (the columns of per_deal_csv as keys):
/// expected_close as a date when `dates` (else a time), null where never won.
struct per_deal_document {
    const std::vector<deal_forecast>& deals;
    bool dates = false;
    double days_per_unit = 1.0;
};

template <class Json>
    requires nlohmann::detail::is_basic_json<Json>::value
void to_json(Json& j, const per_deal_document& x) {
    j = Json::array();
    for (const auto& d : x.deals) {
        Json e = d;
        e["expected_close"] =
            std::isfinite(d.expected_close) ? Json(format_time(d.expected_close, x.dates, x.days_per_unit)) : Json(nullptr);
        j.push_back(std::move(e));
    }
}

// --- sweep.hpp -----------------------------------------------------------------------------

/// The changes of a scenario, as given (1 = unchanged, left out).
template <class Json>
    requires nlohmann::detail::is_basic_json<Json>::value
void to_json(Json& j, const scenario& x) {
    j = Json::object();
    if (x.dwell_scale != 1.0) j["dwell_scale"] = x.dwell_scale;
    if (x.win_odds_scale != 1.0) j["win_odds_scale"] = x.win_odds_scale;
    if (x.arrival_scale != 1.0) j["arrival_scale"] = x.arrival_scale;
    if (x.deal_size_scale != 1.0) j["deal_size_scale"] = x.deal_size_scale;
    if (!x.stages.empty()) {
        Json st = Json::object();
        for (const auto& [name, v] : x.stages) {
            Json e = Json::object();
            if (v.dwell_scale) e["dwell_scale"] = *v.dwell_scale;
            if (v.win_odds_scale) e["win_odds_scale"] = *v.win_odds_scale;
            st[name] = std::move(e);
        }
        j["stages"] = std::move(st);
    }
}

/// The report of `pipecast sweep --json`. The "scenarios" array is the result; wall_seconds,
/// processes and threads say how it ran (they differ between runs).
struct sweep_document {
    const sweep& sw;
    const sweep_result& result;
    const model& m;
    double wall_seconds = 0.0; ///< inputs read to report
    int processes = 1;
    unsigned threads = 0;
};

template <class Json>
    requires nlohmann::detail::is_basic_json<Json>::value
void to_json(Json& j, const sweep_document& x) {
    const sweep_result& r = x.result;
    const model& m = x.m;
    j = Json::object();
    j["model"] = m.name;
    j["time_unit"] = m.time_unit;
    j["currency"] = m.currency;
    j["deals"] = r.deals;
    j["paths"] = r.paths;
    j["horizon"] = r.horizon;
    j["seed"] = r.seed;
    j["arrivals"] = x.sw.options().model_arrivals && m.arrivals.has_value();
    j["base"] = x.sw.scenarios()[r.base].name;
    j["quotas"] = x.sw.options().quotas;
    Json list = Json::array();
    for (std::size_t i = 0; i < r.scenarios.size(); ++i) {
        const scenario_result& s = r.scenarios[i];
        Json e;
        e["name"] = s.name;
        e["changes"] = x.sw.scenarios()[i];
        e["mean"] = s.won_value.mean;
        e["stderr"] = s.won_value.standard_error;
        e["sd"] = s.won_value.sd;
        e["quantiles"] = detail::quantiles_object<Json>(s.won_value.quantile_levels, s.won_value.quantiles);
        e["p_quota"] = detail::quota_list<Json>(s.won_value);
        e["won_count"] = {{"mean", s.won_count.mean}, {"stderr", s.won_count.standard_error}};
        Json d;
        d["mean"] = s.difference.mean;
        d["stderr"] = s.difference.standard_error;
        d["sd"] = s.difference.sd;
        d["quantiles"] = detail::quantiles_object<Json>(s.difference.quantile_levels, s.difference.quantiles);
        e["difference"] = std::move(d);
        e["correlation"] = s.correlation;
        e["capped_deal_paths"] = s.capped_deal_paths;
        list.push_back(std::move(e));
    }
    j["scenarios"] = std::move(list);
    j["elapsed_seconds"] = x.wall_seconds;
    j["piece_seconds"] = r.elapsed_seconds; // the pieces' wall times summed over every process
    j["processes"] = x.processes;
    j["threads"] = x.threads;
}

} // namespace pipecast
