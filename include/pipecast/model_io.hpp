// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file model_io.hpp
/// @brief Reading and writing models in the JSON format (docs/model-format.md).
///
/// The format is the one of `b2b6.json`, extended with: more outcomes (an outcome list, or
/// an `other` list beside `won`/`lost`), linear funnels (each stage carries `win_rate` or
/// `conversion` and `transitions` is omitted), more dwell families and parameterisations,
/// and seasonal arrivals. Errors name the source and the JSON path of the bad value.

#include <pipecast/detail/encoding.hpp>
#include <pipecast/dwell.hpp>
#include <pipecast/error.hpp>
#include <pipecast/model.hpp>
#include <pipecast/stage_graph.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <istream>
#include <iterator>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>

namespace pipecast {

namespace detail {

/// Reader of one JSON document that reports errors as "source: /json/path: problem".
class json_reader {
public:
    explicit json_reader(std::string source) : source_(std::move(source)) {}

    [[noreturn]] void fail(const std::string& path, const std::string& what) const {
        throw parse_error(source_, 0, 0, path.empty() ? what : path + ": " + what);
    }
    const nlohmann::json& member(const nlohmann::json& obj, const std::string& path, const char* key) const {
        if (!obj.is_object()) fail(path, "expected an object");
        const auto it = obj.find(key);
        if (it == obj.end()) fail(path, std::string("missing field '") + key + "'");
        return *it;
    }
    double number(const nlohmann::json& obj, const std::string& path, const char* key) const {
        const auto& v = member(obj, path, key);
        if (!v.is_number()) fail(path + "/" + key, "expected a number, got " + v.dump());
        return v.get<double>();
    }
    std::string string(const nlohmann::json& obj, const std::string& path, const char* key) const {
        const auto& v = member(obj, path, key);
        if (!v.is_string()) fail(path + "/" + key, "expected a string, got " + v.dump());
        return v.get<std::string>();
    }
    std::vector<double> numbers(const nlohmann::json& obj, const std::string& path, const char* key) const {
        const auto& v = member(obj, path, key);
        if (!v.is_array()) fail(path + "/" + key, "expected an array of numbers");
        std::vector<double> out;
        out.reserve(v.size());
        for (std::size_t i = 0; i < v.size(); ++i) {
            if (!v[i].is_number()) fail(path + "/" + key + "/" + std::to_string(i), "expected a number, got " + v[i].dump());
            out.push_back(v[i].get<double>());
        }
        return out;
    }
    /// Runs f; a model_error it throws is re-thrown as a parse_error at `path`.
    template <class F>
    decltype(auto) at(const std::string& path, F&& f) const {
        try {
            return f();
        } catch (const parse_error&) {
            throw;
        } catch (const model_error& e) {
            fail(path, e.what());
        }
    }
    [[nodiscard]] const std::string& source() const noexcept { return source_; }

private:
    std::string source_;
};

inline dwell_distribution dwell_from_json(const json_reader& r, const nlohmann::json& j, const std::string& path) {
    const std::string dist = r.string(j, path, "dist");
    return r.at(path, [&] {
        if (dist == "exponential") {
            if (!j.contains("rate")) return dwell_distribution::exponential(r.number(j, path, "mean"));
            const double rate = r.number(j, path, "rate");
            if (!(std::isfinite(rate) && rate > 0.0))
                r.fail(path + "/rate", detail::message("exponential dwell: rate must be positive, got ", rate));
            return dwell_distribution::exponential(1.0 / rate);
        }
        if (dist == "gamma") {
            const double k = r.number(j, path, "shape");
            return dwell_distribution::gamma(k, j.contains("scale") ? k * r.number(j, path, "scale")
                                                                    : r.number(j, path, "mean"));
        }
        if (dist == "lognormal") {
            if (j.contains("mu")) return dwell_distribution::lognormal_log(r.number(j, path, "mu"), r.number(j, path, "sigma"));
            return dwell_distribution::lognormal(r.number(j, path, "mean"), r.number(j, path, "sd"));
        }
        if (dist == "weibull") {
            const double k = r.number(j, path, "shape");
            return dwell_distribution::weibull(k, j.contains("scale") ? r.number(j, path, "scale") * std::tgamma(1.0 + 1.0 / k)
                                                                      : r.number(j, path, "mean"));
        }
        if (dist == "fixed")
            return dwell_distribution::fixed(j.contains("value") ? r.number(j, path, "value") : r.number(j, path, "mean"));
        if (dist == "empirical") {
            if (j.contains("samples")) return dwell_distribution::empirical(r.numbers(j, path, "samples"));
            return dwell_distribution::empirical(r.numbers(j, path, "values"), r.numbers(j, path, "weights"));
        }
        r.fail(path + "/dist", "unknown distribution '" + dist +
                                   "' (exponential, gamma, lognormal, weibull, fixed, empirical)");
    });
}

} // namespace detail

/// JSON form of a dwell distribution, in the mean-based parameterisation.
[[nodiscard]] inline nlohmann::json to_json(const dwell_distribution& d) {
    nlohmann::json j;
    j["dist"] = std::string(to_string(d.family()));
    switch (d.family()) {
    case dwell_family::exponential: j["mean"] = d.mean(); break;
    case dwell_family::gamma:
    case dwell_family::weibull:
        j["shape"] = d.shape();
        j["mean"] = d.mean();
        break;
    case dwell_family::lognormal:
        // mean and sd (the b2b6 form) when they rebuild the same distribution exactly,
        // else the exact log parameters, so that reading the JSON back gives an equal value
        if (dwell_distribution::lognormal(d.mean(), d.sd()) == d) {
            j["mean"] = d.mean();
            j["sd"] = d.sd();
        } else {
            j["mu"] = d.log_mu();
            j["sigma"] = d.log_sigma();
        }
        break;
    case dwell_family::fixed: j["value"] = d.mean(); break;
    case dwell_family::empirical: {
        std::vector<double> w(d.values().size());
        for (std::size_t i = 0; i < w.size(); ++i) w[i] = d.cumulative()[i] - (i ? d.cumulative()[i - 1] : 0.0);
        j["values"] = std::vector<double>(d.values().begin(), d.values().end());
        j["weights"] = w;
        break;
    }
    }
    return j;
}

/// Builds a model from parsed JSON. @param source named in error messages.
/// @throws parse_error naming the source and JSON path of the problem (invalid graphs
///   included: the graph's model_error message is kept).
[[nodiscard]] inline model model_from_json(const nlohmann::json& j, const std::string& source = "<json>") {
    const detail::json_reader r(source);
    if (!j.is_object()) r.fail("", "a model must be a JSON object");
    const auto& js = r.member(j, "", "stages");
    if (!js.is_array() || js.empty()) r.fail("/stages", "expected a non-empty array of stages");

    std::vector<open_stage> stages;
    std::vector<double> rates;
    enum { none, win_rate, conversion } rate_kind = none;
    for (std::size_t i = 0; i < js.size(); ++i) {
        const std::string path = "/stages/" + std::to_string(i);
        std::string nm = r.string(js[i], path, "name");
        if (js[i].contains("branches")) {
            if (js[i].contains("dwell"))
                r.fail(path, "a stage with 'branches' has a dwell per branch, not a 'dwell' of its own");
            const auto& jb = js[i]["branches"];
            if (!jb.is_array() || jb.empty())
                r.fail(path + "/branches", "expected a non-empty array of {\"to\", \"probability\", \"dwell\"}");
            std::vector<stage_branch> branches;
            for (std::size_t k = 0; k < jb.size(); ++k) {
                const std::string bp = path + "/branches/" + std::to_string(k);
                stage_branch b{r.string(jb[k], bp, "to"), r.number(jb[k], bp, "probability"),
                               detail::dwell_from_json(r, r.member(jb[k], bp, "dwell"), bp + "/dwell")};
                if (jb[k].contains("stalled")) {
                    if (!jb[k]["stalled"].is_boolean()) r.fail(bp + "/stalled", "expected true or false");
                    b.stalled = jb[k]["stalled"].get<bool>();
                }
                branches.push_back(std::move(b));
            }
            // the stage's own dwell is replaced by the summary when the graph is built
            stages.push_back({nm, branches.front().dwell, std::move(branches)});
        } else {
            stages.push_back({nm, detail::dwell_from_json(r, r.member(js[i], path, "dwell"), path + "/dwell")});
        }
        for (auto [key, kind] : {std::pair{"win_rate", win_rate}, std::pair{"conversion", conversion}}) {
            if (!js[i].contains(key)) continue;
            if (rate_kind != none && rate_kind != kind)
                r.fail(path, "mixes 'win_rate' and 'conversion': give one kind for every stage");
            rate_kind = kind;
            rates.push_back(r.number(js[i], path, key));
        }
    }

    // Outcomes: {"won": "...", "lost": "...", "other": [...]} or [{"name", "win"}, ...].
    std::vector<outcome_stage> outcomes;
    const auto& jo = r.member(j, "", "outcomes");
    auto outcome_list = [&](const nlohmann::json& list, const std::string& path) {
        if (!list.is_array()) r.fail(path, "expected an array of {\"name\", \"win\"} objects");
        for (std::size_t k = 0; k < list.size(); ++k) {
            const std::string p = path + "/" + std::to_string(k);
            const auto& w = r.member(list[k], p, "win");
            if (!w.is_boolean()) r.fail(p + "/win", "expected true or false");
            outcomes.push_back({r.string(list[k], p, "name"), w.get<bool>()});
        }
    };
    if (jo.is_array()) {
        outcome_list(jo, "/outcomes");
    } else {
        outcomes.push_back({r.string(jo, "/outcomes", "won"), true});
        outcomes.push_back({r.string(jo, "/outcomes", "lost"), false});
        if (jo.contains("other")) outcome_list(jo["other"], "/outcomes/other");
    }

    std::optional<stage_graph> graph;
    if (j.contains("transitions") && rate_kind != none)
        r.fail("/transitions", detail::message("stages carry '", rate_kind == win_rate ? "win_rate" : "conversion",
                                               "' and the model has 'transitions': give one or the other"));
    const bool any_branches = std::any_of(stages.begin(), stages.end(), [](const auto& s) { return !s.branches.empty(); });
    if (j.contains("format_version")) {
        const double v = r.number(j, "", "format_version");
        if (v != 1.0 && v != 2.0)
            r.fail("/format_version", detail::message("unsupported format_version ", v, " (this library reads 1 and 2)"));
    }
    if (any_branches && rate_kind != none)
        r.fail("/stages", "a linear funnel ('win_rate' or 'conversion') cannot have branched stages");
    if (any_branches && !j.contains("transitions")) { // every stage branched: no rows needed
        graph = r.at("/stages", [&] { return stage_graph::from_rows(stages, outcomes, {}); });
    } else if (j.contains("transitions")) {
        const auto& jt = j["transitions"];
        if (!jt.is_object()) r.fail("/transitions", "expected an object: stage -> {next stage: probability}");
        transition_rows rows;
        auto known = [&](const std::string& nm) {
            return std::any_of(stages.begin(), stages.end(), [&](const auto& s) { return s.name == nm; }) ||
                   std::any_of(outcomes.begin(), outcomes.end(), [&](const auto& o) { return o.name == nm; });
        };
        for (const auto& [from, row] : jt.items()) {
            const nlohmann::json::json_pointer from_ptr = nlohmann::json::json_pointer("/transitions") / from;
            const std::string from_path = from_ptr.to_string(); // '/' and '~' escaped
            if (!row.is_object()) r.fail(from_path, "expected an object: next stage -> probability");
            if (!known(from)) r.fail(from_path, "unknown stage '" + from + "'");
            for (const auto& [to, p] : row.items()) {
                const std::string to_path = (from_ptr / to).to_string();
                if (!p.is_number()) r.fail(to_path, "expected a probability, got " + p.dump());
                if (!known(to)) r.fail(to_path, "stage '" + from + "': unknown target stage '" + to + "'");
                const double v = p.get<double>();
                if (!(v >= 0.0 && v <= 1.0))
                    r.fail(to_path, detail::message("stage '", from, "': transition probability to '", to,
                                                    "' must be in [0, 1], got ", v));
                rows[from][to] = v;
            }
        }
        graph = r.at("/transitions", [&] { return stage_graph::from_rows(stages, outcomes, rows); });
    } else {
        if (rate_kind == none || rates.size() != stages.size())
            r.fail("", "no 'transitions': a linear funnel needs 'win_rate' or 'conversion' on every stage");
        if (outcomes.size() != 2)
            r.fail("/outcomes", "a linear funnel has exactly the outcomes 'won' and 'lost'");
        std::vector<std::string> names;
        std::vector<dwell_distribution> dwells;
        for (auto& s : stages) {
            names.push_back(s.name);
            dwells.push_back(s.dwell);
        }
        const auto won = std::find_if(outcomes.begin(), outcomes.end(), [](auto& o) { return o.win; });
        const auto lost = std::find_if(outcomes.begin(), outcomes.end(), [](auto& o) { return !o.win; });
        if (won == outcomes.end() || lost == outcomes.end()) r.fail("/outcomes", "needs one won and one lost outcome");
        graph = r.at("/stages", [&] {
            return linear_funnel(names, rates, dwells,
                                 rate_kind == win_rate ? funnel_rates::cumulative_win : funnel_rates::conversion,
                                 won->name, lost->name);
        });
    }

    model m{std::move(*graph), std::nullopt, std::nullopt, "", "", "day", ""};
    if (j.contains("name")) m.name = r.string(j, "", "name");
    if (j.contains("description")) m.description = r.string(j, "", "description");
    if (j.contains("time_unit")) {
        m.time_unit = r.string(j, "", "time_unit");
        r.at("/time_unit", [&] { return days_per_unit(m.time_unit); });
    }
    if (j.contains("currency")) m.currency = r.string(j, "", "currency");
    if (j.contains("overdispersion")) {
        const auto& jv = j["overdispersion"];
        if (!jv.is_object()) r.fail("/overdispersion", "expected an object {\"sigma\": σ} or {\"stages\": {stage: σ}}");
        auto check = [&](double v, const std::string& path) {
            if (!(std::isfinite(v) && v >= 0.0 && v <= 10.0))
                r.fail(path, detail::message("must be finite and in [0, 10], got ", v));
            return v;
        };
        if (jv.contains("sigma")) m.overdispersion = check(r.number(jv, "/overdispersion", "sigma"), "/overdispersion/sigma");
        if (jv.contains("stages")) {
            const auto& js2 = jv["stages"];
            if (!js2.is_object()) r.fail("/overdispersion/stages", "expected an object: open stage -> σ");
            m.stage_overdispersion.assign(m.graph.open_count(), m.overdispersion);
            for (const auto& [nm, v] : js2.items()) {
                const std::string path = (nlohmann::json::json_pointer("/overdispersion/stages") / nm).to_string();
                const auto idx = m.graph.find(nm);
                if (!idx || !m.graph.is_open(*idx)) r.fail(path, "'" + nm + "' is not an open stage of the model");
                if (!v.is_number()) r.fail(path, "expected a number, got " + v.dump());
                m.stage_overdispersion[*idx] = check(v.get<double>(), path);
            }
        }
        if (!jv.contains("sigma") && !jv.contains("stages"))
            r.fail("/overdispersion", "needs 'sigma' (every stage) or 'stages' (per stage)");
    }
    if (j.contains("deal_size")) {
        const auto& jd = j["deal_size"];
        const std::string dist = r.string(jd, "/deal_size", "dist");
        if (dist != "lognormal" && dist != "empirical")
            r.fail("/deal_size/dist", "only 'lognormal' and 'empirical' deal sizes are supported, got '" + dist + "'");
        if (dist == "empirical") {
            std::vector<double> v = r.numbers(jd, "/deal_size", "values");
            std::vector<double> w = jd.contains("weights") ? r.numbers(jd, "/deal_size", "weights")
                                                           : std::vector<double>(v.size(), 1.0);
            m.deal_size = r.at("/deal_size", [&] { return deal_size_distribution::empirical(std::move(v), std::move(w)); });
        } else {
            m.deal_size = r.at("/deal_size", [&] {
                if (jd.contains("mean") && !jd.contains("median")) {
                    const double mean = r.number(jd, "/deal_size", "mean"), sg = r.number(jd, "/deal_size", "sigma");
                    return deal_size_distribution(mean * std::exp(-0.5 * sg * sg), sg);
                }
                return deal_size_distribution(r.number(jd, "/deal_size", "median"), r.number(jd, "/deal_size", "sigma"));
            });
        }
    }
    if (j.contains("arrivals")) {
        const auto& ja = j["arrivals"];
        arrival_process a;
        const std::string st = r.string(ja, "/arrivals", "stage");
        const auto idx = m.graph.find(st);
        if (!idx) r.fail("/arrivals/stage", "unknown stage '" + st + "'");
        a.stage = *idx;
        a.rate = ja.contains("rates") ? 0.0 : r.number(ja, "/arrivals", "rate");
        if (ja.contains("rates")) {
            a.period_rates = r.numbers(ja, "/arrivals", "rates");
            a.period = r.number(ja, "/arrivals", "period");
            double total = 0.0;
            for (double x : a.period_rates) total += x;
            a.rate = a.period_rates.empty() ? 0.0 : total / static_cast<double>(a.period_rates.size());
        }
        r.at("/arrivals", [&] { a.validate(m.graph); });
        m.arrivals = std::move(a);
    }
    return m;
}

/// Reads a model from a stream of JSON text. @throws parse_error (with line and column for
/// malformed JSON) or as model_from_json.
[[nodiscard]] inline model read_model(std::istream& in, const std::string& source = "<stream>") {
    const std::string text(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>{});
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
        // e.byte is the 1-based offset of the offending character: turn it into line:column.
        const std::size_t at = std::min<std::size_t>(e.byte, text.size());
        std::size_t line = 1, column = 1;
        for (std::size_t i = 0; i + 1 < at; ++i) {
            if (text[i] == '\n') {
                ++line;
                column = 1;
            } else {
                ++column;
            }
        }
        std::string what = e.what();
        if (const auto colon = what.find("syntax error"); colon != std::string::npos) what.erase(0, colon);
        throw parse_error(source, line, column, "malformed JSON: " + what);
    }
    return model_from_json(j, source);
}

/// Loads a model from a JSON file. @throws error if the file cannot be opened.
[[nodiscard]] inline model load_model(const std::string& path) {
    std::istringstream in(detail::read_file_bytes(path, "model file")); // a directory is an error, not a read failure
    return read_model(in, path);
}

/// The JSON form of a model (general form, with explicit transitions).
[[nodiscard]] inline nlohmann::json to_json(const model& m) {
    const stage_graph& g = m.graph;
    nlohmann::json j;
    if (!m.name.empty()) j["name"] = m.name;
    if (!m.description.empty()) j["description"] = m.description;
    j["time_unit"] = m.time_unit;
    if (!m.currency.empty()) j["currency"] = m.currency;
    if (g.has_branches()) j["format_version"] = 2;
    j["stages"] = nlohmann::json::array();
    for (const auto& s : g.stages()) {
        if (s.branches.empty()) {
            j["stages"].push_back({{"name", s.name}, {"dwell", to_json(s.dwell)}});
            continue;
        }
        nlohmann::json branches = nlohmann::json::array();
        for (const auto& b : s.branches) {
            nlohmann::json jb = {{"to", b.to}, {"probability", b.probability}, {"dwell", to_json(b.dwell)}};
            if (b.stalled) jb["stalled"] = true;
            branches.push_back(std::move(jb));
        }
        j["stages"].push_back({{"name", s.name}, {"branches", std::move(branches)}});
    }
    nlohmann::json outcomes = nlohmann::json::array();
    for (const auto& o : g.outcomes()) outcomes.push_back({{"name", o.name}, {"win", o.win}});
    j["outcomes"] = outcomes;
    nlohmann::json t = nlohmann::json::object();
    for (std::size_t i = 0; i < g.open_count(); ++i) {
        if (g.branched(i)) continue; // its branches are its row
        nlohmann::json row = nlohmann::json::object();
        for (std::size_t k = 0; k < g.size(); ++k)
            if (g.transition(i, k) > 0.0) row[g.name(k)] = g.transition(i, k);
        t[g.name(i)] = row;
    }
    if (!t.empty()) j["transitions"] = t;
    if (m.overdispersed()) {
        nlohmann::json o = nlohmann::json::object();
        if (m.overdispersion > 0.0 || m.stage_overdispersion.empty()) o["sigma"] = m.overdispersion;
        if (!m.stage_overdispersion.empty()) {
            o["stages"] = nlohmann::json::object();
            for (std::size_t i = 0; i < m.stage_overdispersion.size() && i < g.open_count(); ++i)
                o["stages"][g.name(i)] = m.stage_overdispersion[i];
        }
        j["overdispersion"] = std::move(o);
    }
    if (m.deal_size && m.deal_size->is_empirical()) {
        const auto v = m.deal_size->values(), w = m.deal_size->weights();
        j["deal_size"] = {{"dist", "empirical"},
                          {"values", std::vector<double>(v.begin(), v.end())},
                          {"weights", std::vector<double>(w.begin(), w.end())}};
    } else if (m.deal_size) {
        j["deal_size"] = {{"dist", "lognormal"}, {"median", m.deal_size->median()}, {"sigma", m.deal_size->sigma()}};
    }
    if (m.arrivals) {
        nlohmann::json a = {{"stage", g.name(m.arrivals->stage)}};
        if (m.arrivals->period_rates.empty()) {
            a["rate"] = m.arrivals->rate;
        } else {
            a["period"] = m.arrivals->period;
            a["rates"] = m.arrivals->period_rates;
        }
        j["arrivals"] = a;
    }
    return j;
}

/// Writes a model as indented JSON.
inline void write_model(std::ostream& out, const model& m) { out << to_json(m).dump(2) << '\n'; }

/// Saves a model to a JSON file. @throws error if the file cannot be written.
inline void save_model(const model& m, const std::string& path) {
    std::ofstream out(path);
    if (!out) throw error(detail::message(path, ": cannot open for writing"));
    write_model(out, m);
    if (!out) throw error(detail::message(path, ": write failed"));
}

} // namespace pipecast
