// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file simulation/sweep.hpp
/// @brief Scenario sweeps: many what-if changes of one model (faster cycles, better
/// conversion, more arrivals, bigger deals, per-stage changes), each simulated over the same
/// book with common random numbers, summarised and compared with a base scenario. The work
/// is split into (scenario, path range) pieces that can run anywhere (threads here, MPI ranks
/// in examples/mpi/) and combine bit-identically. See docs/sweep.md and docs/scaling.md.
///
/// **Levers** (each 1 = unchanged; docs/sweep.md has the maths):
///  - `dwell_scale` c > 0: every dwell time T becomes cT (each branch's dwell on a branched
///    stage). The book deals keep their ages a; a deal's residual is cT − a | cT > a.
///  - `win_odds_scale` k > 0: the odds of every stage's forward move (to a winning outcome or
///    a later open stage; on a branched stage, the forward branches' share) are multiplied
///    by k: f′ = kf / (1 − f + kf), forward entries scaled by f′/f, the others by
///    (1 − f′)/(1 − f); f = 0 or 1 is unchanged. The rule of the simulator's shock with
///    e^{σZ} = k.
///  - `arrival_scale` a >= 0: the model's arrival rate (and every seasonal rate) times a.
///  - `deal_size_scale` c > 0: every book amount and the new deals' amounts times c
///    (lognormal median × c, empirical values × c).
///  - `stages`: {"<open stage>": {"dwell_scale": c, "win_odds_scale": k}}: for that stage,
///    these replace the scenario's global values.
///
/// **Determinism.** Every scenario runs with the same seed: path p of every scenario draws
/// from path p's Philox streams (simulation.hpp), so the per-path won values do not depend
/// on how the paths are split or on the thread count, and the base and a scenario share
/// their random numbers (the difference's standard error is that of the paired difference).
/// Summaries are computed from the per-path vectors in path order (one process, whatever the
/// split): combine() of any tiling of the pieces is bit-identical to run().

#include <pipecast/data/book.hpp>
#include <pipecast/detail/encoding.hpp>
#include <pipecast/error.hpp>
#include <pipecast/io/model_json.hpp>
#include <pipecast/model/dwell.hpp>
#include <pipecast/model/model.hpp>
#include <pipecast/model/stage_graph.hpp>
#include <pipecast/simulation/simulation.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pipecast {

/// Per-stage values of a scenario: where set, they replace the scenario's global ones.
struct stage_scenario {
    std::optional<double> dwell_scale;
    std::optional<double> win_odds_scale;
    friend bool operator==(const stage_scenario&, const stage_scenario&) = default;
};

/// One what-if: changes to the model (1 = unchanged). See the file comment for the maths.
struct scenario {
    std::string name;
    double dwell_scale = 1.0;     ///< every dwell time × c (c > 0)
    double win_odds_scale = 1.0;  ///< odds of every forward move × k (k > 0)
    double arrival_scale = 1.0;   ///< arrival rates × a (a >= 0; the model must have arrivals unless a = 1)
    double deal_size_scale = 1.0; ///< book amounts and new deals' amounts × c (c > 0)
    std::map<std::string, stage_scenario> stages; ///< per open stage (by name)
    friend bool operator==(const scenario&, const scenario&) = default;
};

namespace detail {

/// "scenario 'faster'" (or "scenario 3" when it has no name yet).
template <class = void>
[[nodiscard]] std::string scenario_label(const scenario& s, std::size_t index) {
    return s.name.empty() ? message("scenario ", index + 1) : message("scenario '", s.name, "'");
}

template <class = void>
void check_scale(const std::string& who, std::string_view field, double v, bool zero_ok) {
    if (!(std::isfinite(v) && (zero_ok ? v >= 0.0 : v > 0.0)))
        throw argument_error(message(who, ": ", field, zero_ok ? " must be finite and >= 0, got " : " must be positive and finite, got ", v));
}

/// The odds of the forward share f times k: kf / (1 − f + kf) (f = 0 or 1 unchanged).
template <class = void>
[[nodiscard]] double scaled_forward(double f, double k) noexcept {
    if (!(f > 0.0 && f < 1.0) || k == 1.0) return f;
    const double odds = f / (1.0 - f) * k;
    return odds / (1.0 + odds);
}

} // namespace detail

/// The dwell distribution of cT for T ~ d (c > 0): the same family with every time × c
/// (exponential and gamma and Weibull: mean × c, same shape; lognormal: log-location + ln c,
/// same log-scale; fixed: value × c; empirical: support points × c, same weights).
/// c = 1 returns d unchanged. @throws argument_error unless c is positive and finite;
///   model_error if the scaled parameters are out of range (e.g. an overflowing mean).
template <class = void>
[[nodiscard]] dwell_distribution scale_dwell(const dwell_distribution& d, double c) {
    detail::check_scale("scale_dwell", "scale", c, false);
    if (c == 1.0) return d;
    switch (d.family()) {
    case dwell_family::exponential: return dwell_distribution::exponential(d.mean() * c);
    case dwell_family::gamma: return dwell_distribution::gamma(d.shape(), d.mean() * c);
    case dwell_family::lognormal: return dwell_distribution::lognormal_log(d.log_mu() + std::log(c), d.log_sigma());
    case dwell_family::weibull: return dwell_distribution::weibull(d.shape(), d.mean() * c);
    case dwell_family::fixed: return dwell_distribution::fixed(d.mean() * c);
    case dwell_family::empirical: {
        std::vector<double> v(d.values().begin(), d.values().end()), w(v.size());
        for (std::size_t i = 0; i < v.size(); ++i) {
            v[i] *= c;
            w[i] = d.cumulative()[i] - (i ? d.cumulative()[i - 1] : 0.0);
        }
        return dwell_distribution::empirical(std::move(v), std::move(w));
    }
    }
    return d;
}

/// Checks a scenario's values and stage names against the model.
/// @throws argument_error naming the scenario and the field: a scale out of range, a stage
///   that is not an open stage of the model, arrival_scale != 1 on a model without arrivals.
template <class = void>
void validate_scenario(const scenario& s, const model& m, std::size_t index = 0) {
    const std::string who = detail::scenario_label(s, index);
    detail::check_scale(who, "dwell_scale", s.dwell_scale, false);
    detail::check_scale(who, "win_odds_scale", s.win_odds_scale, false);
    detail::check_scale(who, "arrival_scale", s.arrival_scale, true);
    detail::check_scale(who, "deal_size_scale", s.deal_size_scale, false);
    for (const auto& [name, st] : s.stages) {
        const auto i = m.graph.find(name);
        if (!i || !m.graph.is_open(*i))
            throw argument_error(detail::message(who, ": stages: '", name, "' is not an open stage of the model"));
        const std::string where = detail::message(who, ": stages: '", name, "'");
        if (st.dwell_scale) detail::check_scale(where, "dwell_scale", *st.dwell_scale, false);
        if (st.win_odds_scale) detail::check_scale(where, "win_odds_scale", *st.win_odds_scale, false);
    }
    if (s.arrival_scale != 1.0 && !m.arrivals)
        throw argument_error(detail::message(who, ": arrival_scale ", s.arrival_scale,
                                             " needs a model with an arrival process (\"arrivals\"), and this one has none"));
}

/// The model of a scenario: the levers applied to `m` (see the file comment). Parts a
/// scenario leaves at 1 are copied unchanged, so a scenario without changes gives a model
/// equal to `m`. @throws argument_error as validate_scenario(); model_error (naming the
/// scenario) if a changed part is invalid (e.g. a scaled deal size above the amount bound).
template <class = void>
[[nodiscard]] model apply_scenario(const model& m, const scenario& s, std::size_t index = 0) {
    validate_scenario(s, m, index);
    const std::string who = detail::scenario_label(s, index);
    try {
        const stage_graph& g = m.graph;
        const std::size_t n_open = g.open_count(), n = g.size();
        std::vector<open_stage> stages(g.stages().begin(), g.stages().end());
        std::vector<outcome_stage> outcomes(g.outcomes().begin(), g.outcomes().end());
        Eigen::MatrixXd p = g.transitions();
        bool changed = false;
        for (std::size_t i = 0; i < n_open; ++i) {
            const auto it = s.stages.find(stages[i].name);
            const stage_scenario* st = it == s.stages.end() ? nullptr : &it->second;
            const double c = st && st->dwell_scale ? *st->dwell_scale : s.dwell_scale;
            const double k = st && st->win_odds_scale ? *st->win_odds_scale : s.win_odds_scale;
            auto forward_to = [&](std::size_t j) { return j >= n_open ? g.is_win(j) : j > i; };
            if (c != 1.0) {
                changed = true;
                stages[i].dwell = scale_dwell(stages[i].dwell, c);
                for (auto& b : stages[i].branches) b.dwell = scale_dwell(b.dwell, c);
            }
            if (k == 1.0) continue;
            changed = true;
            if (!stages[i].branches.empty()) {
                double f = 0.0;
                for (const auto& b : stages[i].branches)
                    if (forward_to(g.index_of(b.to))) f += b.probability;
                const double nf = detail::scaled_forward(f, k);
                if (nf == f) continue;
                for (auto& b : stages[i].branches)
                    b.probability *= forward_to(g.index_of(b.to)) ? nf / f : (1.0 - nf) / (1.0 - f);
            } else {
                const auto r = static_cast<Eigen::Index>(i);
                double f = 0.0;
                for (std::size_t j = 0; j < n; ++j)
                    if (forward_to(j)) f += p(r, static_cast<Eigen::Index>(j));
                const double nf = detail::scaled_forward(f, k);
                if (nf == f) continue;
                for (std::size_t j = 0; j < n; ++j)
                    p(r, static_cast<Eigen::Index>(j)) *= forward_to(j) ? nf / f : (1.0 - nf) / (1.0 - f);
            }
        }
        std::optional<arrival_process> arrivals = m.arrivals;
        if (arrivals && s.arrival_scale != 1.0) {
            arrivals->rate *= s.arrival_scale;
            for (double& r : arrivals->period_rates) r *= s.arrival_scale;
            arrivals->validate(g);
        }
        std::optional<deal_size_distribution> size = m.deal_size;
        if (size && s.deal_size_scale != 1.0) {
            if (size->is_empirical()) {
                std::vector<double> v(size->values().begin(), size->values().end());
                for (double& x : v) x *= s.deal_size_scale;
                size = deal_size_distribution::empirical(std::move(v), std::vector<double>(size->weights().begin(), size->weights().end()));
            } else {
                size = deal_size_distribution::lognormal(size->median() * s.deal_size_scale, size->sigma());
            }
        }
        return model{changed ? stage_graph(std::move(stages), std::move(outcomes), std::move(p)) : g,
                     std::move(size), std::move(arrivals), m.name, m.description, m.time_unit, m.currency,
                     m.overdispersion, m.stage_overdispersion};
    } catch (const model_error& e) {
        throw model_error(detail::message(who, ": ", e.what()));
    }
}

/// The book of a scenario: every amount × deal_size_scale (the same deals otherwise).
/// @throws argument_error unless the scale is positive and finite, or if an amount overflows.
template <class = void>
[[nodiscard]] book scale_amounts(const book& b, const stage_graph& g, double c) {
    detail::check_scale("scale_amounts", "scale", c, false);
    book out(g);
    out.reserve(b.size());
    for (std::size_t i = 0; i < b.size(); ++i) {
        const double o = b.probability_overrides()[i];
        out.add(b.ids()[i], b.stages()[i], b.amounts()[i] * c, b.ages()[i],
                std::isnan(o) ? std::nullopt : std::optional<double>(o), b.owner_names()[b.owners()[i]],
                b.category_names()[b.categories()[i]], b.currency_names()[b.currencies()[i]]);
    }
    return out;
}

/// Reads scenarios from JSON: {"scenarios": [{"name": "base"}, {"name": "faster",
/// "dwell_scale": 0.8}, {"name": "late", "stages": {"Negotiation": {"win_odds_scale": 1.5}}}]}.
/// Each needs a unique non-empty name; values are JSON numbers; unknown keys are errors.
/// @throws argument_error naming `source`, the scenario and the key or value.
template <class = void>
[[nodiscard]] std::vector<scenario> scenarios_from_json(const nlohmann::json& j, const std::string& source) {
    auto fail = [&](const std::string& what) { throw argument_error(detail::message(source, ": ", what)); };
    if (!j.is_object()) fail("expected a JSON object {\"scenarios\": [...]}");
    for (const auto& [key, value] : j.items())
        if (key != "scenarios" && key != "description")
            fail(detail::message("unknown key '", key, "' (expected \"scenarios\")"));
    const auto list = j.find("scenarios");
    if (list == j.end() || !list->is_array()) fail("missing \"scenarios\": an array of scenarios");
    if (list->empty()) fail("\"scenarios\" is empty: give at least one scenario");
    std::vector<scenario> out;
    std::set<std::string> names;
    for (std::size_t i = 0; i < list->size(); ++i) {
        const nlohmann::json& e = (*list)[i];
        scenario s;
        std::string who = detail::message("scenario ", i + 1);
        if (!e.is_object()) fail(detail::message(who, ": expected an object"));
        const auto nm = e.find("name");
        if (nm == e.end() || !nm->is_string() || nm->get<std::string>().empty())
            fail(detail::message(who, ": missing \"name\" (a non-empty string)"));
        s.name = nm->get<std::string>();
        who = detail::scenario_label(s, i);
        if (!names.insert(s.name).second) fail(detail::message(who, ": the name is used twice"));
        auto number = [&](const nlohmann::json& v, const std::string& where, std::string_view key) {
            if (!v.is_number()) fail(detail::message(where, ": ", key, " must be a number, got ", v.dump()));
            return v.get<double>();
        };
        for (const auto& [key, value] : e.items()) {
            if (key == "name" || key == "description") continue;
            if (key == "dwell_scale") s.dwell_scale = number(value, who, key);
            else if (key == "win_odds_scale") s.win_odds_scale = number(value, who, key);
            else if (key == "arrival_scale") s.arrival_scale = number(value, who, key);
            else if (key == "deal_size_scale") s.deal_size_scale = number(value, who, key);
            else if (key == "stages") {
                if (!value.is_object()) fail(detail::message(who, ": stages must be an object {\"<stage>\": {...}}"));
                for (const auto& [stage, changes] : value.items()) {
                    const std::string where = detail::message(who, ": stages: '", stage, "'");
                    if (!changes.is_object()) fail(detail::message(where, ": expected an object"));
                    stage_scenario st;
                    for (const auto& [k2, v2] : changes.items()) {
                        if (k2 == "dwell_scale") st.dwell_scale = number(v2, where, k2);
                        else if (k2 == "win_odds_scale") st.win_odds_scale = number(v2, where, k2);
                        else fail(detail::message(where, ": unknown key '", k2, "' (known: dwell_scale, win_odds_scale)"));
                    }
                    s.stages.emplace(stage, st);
                }
            } else {
                fail(detail::message(who, ": unknown key '", key,
                                     "' (known: name, description, dwell_scale, win_odds_scale, arrival_scale, "
                                     "deal_size_scale, stages)"));
            }
        }
        try {
            detail::check_scale(who, "dwell_scale", s.dwell_scale, false);
            detail::check_scale(who, "win_odds_scale", s.win_odds_scale, false);
            detail::check_scale(who, "arrival_scale", s.arrival_scale, true);
            detail::check_scale(who, "deal_size_scale", s.deal_size_scale, false);
            for (const auto& [stage, st] : s.stages) {
                const std::string where = detail::message(who, ": stages: '", stage, "'");
                if (st.dwell_scale) detail::check_scale(where, "dwell_scale", *st.dwell_scale, false);
                if (st.win_odds_scale) detail::check_scale(where, "win_odds_scale", *st.win_odds_scale, false);
            }
        } catch (const argument_error& x) {
            fail(x.what());
        }
        out.push_back(std::move(s));
    }
    return out;
}

/// Reads a scenarios file (strict JSON: detail::parse_json). @throws parse_error (malformed
/// JSON, with line and column) or argument_error as scenarios_from_json().
template <class = void>
[[nodiscard]] std::vector<scenario> load_scenarios(const std::string& path) {
    const std::string text = detail::read_file_bytes(path, "scenarios file");
    return scenarios_from_json(detail::parse_json(text, path), path);
}

/// Options of a sweep: those of each scenario's simulation.
struct sweep_options {
    std::size_t paths = 10000;   ///< per scenario (>= 1, < 2^32)
    double horizon = std::numeric_limits<double>::infinity(); ///< h > 0 (finite with arrivals)
    std::uint64_t seed = 1;      ///< the same for every scenario (common random numbers)
    unsigned threads = 0;        ///< worker threads of each piece (0 = all cores)
    std::vector<double> quantiles = {0.1, 0.5, 0.9};
    std::vector<double> quotas;  ///< P(won value >= quota) for each
    bool model_arrivals = true;  ///< simulate the model's arrival process when it has one
    bool model_correlation = true; ///< the model's overdispersion as the per-path shock (as simulate's CLI)
};

/// One piece of a sweep: the paths [first, last) of one scenario (what a process computes
/// and sends back): per-path won value and count, in path order.
struct sweep_piece {
    std::size_t scenario = 0;
    std::size_t first = 0, last = 0;
    std::vector<double> value, count;
    std::uint64_t capped_deal_paths = 0;
    double elapsed_seconds = 0.0;
};

/// A piece to compute: scenario and path range.
struct sweep_work {
    std::size_t scenario = 0;
    std::size_t first = 0, last = 0;
    friend bool operator==(const sweep_work&, const sweep_work&) = default;
};

/// The share of part `rank` of `parts` in a sweep of `scenarios` × `paths`: the work items
/// (scenario-major, path-minor) split into `parts` contiguous ranges as even as possible
/// (sizes differ by at most one path), cut into per-scenario pieces. Empty when parts
/// exceed the items. @throws argument_error if parts is 0 or rank >= parts.
template <class = void>
[[nodiscard]] std::vector<sweep_work> sweep_share(std::size_t scenarios, std::size_t paths, std::size_t parts,
                                                  std::size_t rank) {
    if (parts == 0 || rank >= parts)
        throw argument_error(detail::message("sweep_share: rank ", rank, " of ", parts, " parts"));
    const std::uint64_t total = static_cast<std::uint64_t>(scenarios) * paths;
    const std::uint64_t base = total / parts, rem = total % parts;
    auto start = [&](std::uint64_t r) { return r * base + std::min<std::uint64_t>(r, rem); };
    std::vector<sweep_work> out;
    for (std::uint64_t i = start(rank), end = start(rank + 1); i < end;) {
        const std::size_t s = static_cast<std::size_t>(i / paths), first = static_cast<std::size_t>(i % paths);
        const std::size_t last = static_cast<std::size_t>(std::min<std::uint64_t>(paths, first + (end - i)));
        out.push_back({s, first, last});
        i += last - first;
    }
    return out;
}

/// One scenario's results.
struct scenario_result {
    std::string name;
    outcome_summary won_value;  ///< won value within the horizon (quantiles, P(quota))
    outcome_summary won_count;  ///< deals won within the horizon
    /// Won value, scenario − base, path by path (common random numbers): its mean and
    /// standard error are the effect of the scenario and its Monte Carlo error.
    outcome_summary difference;
    double correlation = 0.0;   ///< correlation of the scenario's and the base's won values over paths
    std::uint64_t capped_deal_paths = 0;
};

/// Result of a sweep.
struct sweep_result {
    std::size_t paths = 0, deals = 0;
    double horizon = 0.0;
    std::uint64_t seed = 0;
    std::size_t base = 0;       ///< index of the base scenario
    std::vector<scenario_result> scenarios;
    double elapsed_seconds = 0.0; ///< the pieces' summed wall time
};

/// A prepared sweep of scenarios over one model and book. The constructor applies and
/// checks every scenario (so that processes of a split run all fail alike, before any work);
/// run_piece() prepares a simulation engine for the scenario's model (and scaled book) and
/// runs the paths of the piece; combine() assembles pieces that tile every scenario's paths.
/// The base is the scenario named "base", else the first. The model and book must outlive it.
class sweep {
public:
    /// @throws argument_error / model_error naming the scenario (apply_scenario), on bad
    ///   options (as simulate()), or on a run refused by its estimate (max memory / visits).
    template <class = void>
    sweep(const model& m, const book& b, std::vector<scenario> scenarios, sweep_options o)
        : book_(b), scenarios_(std::move(scenarios)), options_(std::move(o)) {
        if (scenarios_.empty()) throw argument_error("sweep: no scenarios");
        if (!b.compatible_with(m.graph)) throw argument_error("sweep: the book was made for a model with other open stages");
        for (std::size_t i = 0; i < scenarios_.size(); ++i) {
            if (scenarios_[i].name == "base") base_ = i;
            models_.push_back(apply_scenario(m, scenarios_[i], i));
            const simulation_options so = options_of(i);
            detail::validate_options(so, models_[i].graph, so.arrival_deal_size.has_value());
            detail::check_estimate(estimate_simulation(models_[i].graph, b, so), so, b.size());
        }
    }

    [[nodiscard]] std::size_t size() const noexcept { return scenarios_.size(); }
    [[nodiscard]] std::size_t base() const noexcept { return base_; }
    [[nodiscard]] const std::vector<scenario>& scenarios() const noexcept { return scenarios_; }
    [[nodiscard]] const model& scenario_model(std::size_t i) const { return models_.at(i); }
    [[nodiscard]] const sweep_options& options() const noexcept { return options_; }

    /// The simulation options of scenario i (the same seed for every scenario).
    template <class = void>
    [[nodiscard]] simulation_options options_of(std::size_t i) const {
        const model& m = models_.at(i);
        simulation_options o;
        o.paths = options_.paths;
        o.horizon = options_.horizon;
        o.seed = options_.seed;
        o.threads = options_.threads;
        o.quantiles = options_.quantiles;
        o.quotas = options_.quotas;
        o.model_arrivals = options_.model_arrivals;
        if (options_.model_arrivals && m.arrivals) o.arrivals = m.arrivals;
        o.arrival_deal_size = m.deal_size;
        if (options_.model_correlation && m.overdispersed()) o.stage_correlation = m.overdispersion_by_stage();
        return o;
    }

    /// Runs the paths [first, last) of scenario i.
    /// @throws argument_error on a bad scenario index or path range.
    template <class = void>
    [[nodiscard]] sweep_piece run_piece(std::size_t i, std::size_t first, std::size_t last) const {
        if (i >= scenarios_.size())
            throw argument_error(detail::message("sweep: scenario ", i, " of ", scenarios_.size()));
        const auto start = std::chrono::steady_clock::now();
        const model& m = models_[i];
        std::optional<book> scaled;
        if (scenarios_[i].deal_size_scale != 1.0) scaled = scale_amounts(book_, m.graph, scenarios_[i].deal_size_scale);
        const simulation_engine e(m, scaled ? *scaled : book_, options_.threads);
        simulation_paths p = e.run_paths(options_of(i), first, last);
        sweep_piece out;
        out.scenario = i;
        out.first = first;
        out.last = last;
        out.value = std::move(p.value);
        out.count = std::move(p.count);
        out.capped_deal_paths = p.capped_deal_paths();
        out.elapsed_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        return out;
    }
    template <class = void>
    [[nodiscard]] sweep_piece run_piece(const sweep_work& w) const { return run_piece(w.scenario, w.first, w.last); }

    /// The sweep's result from pieces (any order) that cover every scenario's paths
    /// [0, paths) exactly once: bit-identical whatever the split.
    /// @throws argument_error on a gap, an overlap or a piece of the wrong size.
    template <class = void>
    [[nodiscard]] sweep_result combine(std::span<const sweep_piece> pieces) const {
        const std::size_t n = scenarios_.size(), paths = options_.paths;
        std::vector<std::vector<double>> value(n), count(n);
        std::vector<std::vector<char>> seen(n);
        std::vector<std::uint64_t> capped(n, 0);
        sweep_result r;
        for (const sweep_piece& p : pieces) {
            if (p.scenario >= n || p.first >= p.last || p.last > paths || p.value.size() != p.last - p.first ||
                p.count.size() != p.value.size())
                throw argument_error(detail::message("sweep: a piece (scenario ", p.scenario, ", paths ", p.first, "..",
                                                     p.last, ", ", p.value.size(), " values) does not fit the sweep"));
            auto& v = value[p.scenario];
            if (v.empty()) {
                v.assign(paths, 0.0);
                count[p.scenario].assign(paths, 0.0);
                seen[p.scenario].assign(paths, 0);
            }
            for (std::size_t k = p.first; k < p.last; ++k) {
                if (seen[p.scenario][k])
                    throw argument_error(detail::message("sweep: path ", k, " of scenario ", p.scenario, " given twice"));
                seen[p.scenario][k] = 1;
                v[k] = p.value[k - p.first];
                count[p.scenario][k] = p.count[k - p.first];
            }
            capped[p.scenario] += p.capped_deal_paths;
            r.elapsed_seconds += p.elapsed_seconds;
        }
        for (std::size_t i = 0; i < n; ++i)
            if (seen[i].empty() || std::find(seen[i].begin(), seen[i].end(), 0) != seen[i].end())
                throw argument_error(detail::message("sweep: the pieces miss paths of scenario ", i));
        r.paths = paths;
        r.deals = book_.size();
        r.horizon = options_.horizon;
        r.seed = options_.seed;
        r.base = base_;
        simulation_options so = options_of(base_), plain = so;
        plain.quotas.clear();
        const std::vector<double>& vb = value[base_];
        const outcome_summary b = detail::summarise(vb, plain);
        for (std::size_t i = 0; i < n; ++i) {
            scenario_result s;
            s.name = scenarios_[i].name;
            s.won_value = detail::summarise(value[i], so);
            s.won_count = detail::summarise(count[i], plain);
            std::vector<double> d(paths);
            for (std::size_t k = 0; k < paths; ++k) d[k] = value[i][k] - vb[k];
            s.difference = detail::summarise(d, plain);
            if (paths > 1 && s.won_value.sd > 0.0 && b.sd > 0.0) {
                double c = 0.0;
                for (std::size_t k = 0; k < paths; ++k) c += (vb[k] - b.mean) * (value[i][k] - s.won_value.mean);
                s.correlation = c / static_cast<double>(paths - 1) / (b.sd * s.won_value.sd);
            }
            s.capped_deal_paths = capped[i];
            r.scenarios.push_back(std::move(s));
        }
        return r;
    }

    /// Runs every scenario's paths here (options.threads workers) and combines them.
    template <class = void>
    [[nodiscard]] sweep_result run() const {
        std::vector<sweep_piece> pieces;
        pieces.reserve(scenarios_.size());
        for (std::size_t i = 0; i < scenarios_.size(); ++i) pieces.push_back(run_piece(i, 0, options_.paths));
        return combine(pieces);
    }

private:
    const book& book_;
    std::vector<scenario> scenarios_;
    sweep_options options_;
    std::vector<model> models_;
    std::size_t base_ = 0;
};

} // namespace pipecast
