// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file io/model_json.hpp
/// @brief Reading and writing models in the JSON format (docs/model-format.md).
///
/// The format is the one of `b2b6.json`, extended with: more outcomes (an outcome list, or
/// an `other` list beside `won`/`lost`), linear funnels (each stage carries `win_rate` or
/// `conversion` and `transitions` is omitted), more dwell families and parameterisations,
/// and seasonal arrivals. Errors name the source and the JSON path of the bad value.

#include <pipecast/detail/encoding.hpp>
#include <pipecast/error.hpp>
#include <pipecast/model/dwell.hpp>
#include <pipecast/model/model.hpp>
#include <pipecast/model/stage_graph.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <istream>
#include <iterator>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>

namespace pipecast {

namespace detail {

/// JSON input nested deeper than this is an error (a model nests 7 levels; the limit keeps
/// every reader and message of bounded depth).
inline constexpr std::size_t json_max_depth = 64;

/// A JSON value for an error message, never longer than about 80 characters and never a
/// recursive dump: a scalar as written (a string clipped, control bytes escaped), an array
/// or object of scalars as written when short, else its kind and size.
template <class = void>
[[nodiscard]] std::string json_brief(const nlohmann::json& v) {
    if (v.is_string()) return detail::message("\"", clip(v.get_ref<const std::string&>()), "\"");
    if (!v.is_structured()) return v.dump();
    const bool flat = v.size() <= 8 && std::none_of(v.begin(), v.end(), [](const nlohmann::json& e) {
                          return e.is_structured() || (e.is_string() && e.get_ref<const std::string&>().size() > 20);
                      });
    if (flat) {
        const std::string text = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        if (text.size() <= 80) return clip(text);
    }
    return message(v.is_array() ? "an array of " : "an object of ", v.size(), v.is_array() ? " values" : " members");
}

/// One JSON path segment for a key (JSON pointer escaping, long keys clipped).
template <class = void>
[[nodiscard]] std::string json_path_key(const std::string& key) {
    std::string out;
    for (char c : key) {
        if (c == '~') out += "~0";
        else if (c == '/') out += "~1";
        else out += c;
    }
    return clip(out);
}

/// SAX handler of parse_json: builds the document like nlohmann's DOM parser and stops at
/// the first duplicate key, a nesting deeper than json_max_depth, or a syntax error (a
/// number out of the range of a double included), recording what and where.
class strict_json_builder { // NOLINT(bugprone-exception-escape): nlohmann's ~basic_json (its destroy() stack) as seen by clang-tidy 14
public:
    using json = nlohmann::json;

    bool null() { return put(json(nullptr)); }
    bool boolean(bool v) { return put(json(v)); }
    bool number_integer(json::number_integer_t v) { return put(json(v)); }
    bool number_unsigned(json::number_unsigned_t v) { return put(json(v)); }
    bool number_float(json::number_float_t v, const json::string_t&) { return put(json(v)); }
    bool string(json::string_t& v) { return put(json(std::move(v))); }
    bool binary(json::binary_t& v) { return put(json::binary(std::move(v))); }
    bool start_object(std::size_t) { return open(json::object()); }
    bool start_array(std::size_t) { return open(json::array()); }
    bool end_object() { return close(); }
    bool end_array() { return close(); }
    bool key(json::string_t& k) {
        ++keys_;
        frame& f = stack_.back();
        if (f.node->contains(k)) {
            problem_ = message("duplicate key '", clip(k), "' (a JSON object names each member once)");
            problem_path_ = message(path(), "/", json_path_key(k));
            duplicate_key_ = keys_;
            return false;
        }
        f.key = std::move(k);
        return true;
    }
    bool parse_error(std::size_t position, const std::string&, const json::exception& ex) {
        syntax_at_ = position;
        std::string what = ex.what();
        if (ex.id == 406) { // out_of_range: the number overflows a double
            const auto q = what.find('\'');
            problem_ = message("number ", q == std::string::npos ? std::string("") : clip(what.substr(q + 1, what.size() - q - 2)),
                               " is out of the range of a double (about ±1.8e308)");
        } else {
            if (const auto at = what.find("syntax error"); at != std::string::npos) what.erase(0, at);
            problem_ = message("malformed JSON: ", what);
        }
        return false;
    }

    json root;
    std::string problem_;      ///< empty while all is well
    std::string problem_path_; ///< JSON path of a duplicate key
    std::size_t syntax_at_ = 0;     ///< 1-based byte offset of a syntax error (0: none)
    std::size_t duplicate_key_ = 0; ///< ordinal (1-based) of the duplicate key among all keys
    bool too_deep_ = false;

private:
    struct frame {
        json* node;
        std::string key; // the member being read (objects)
    };

    bool put(json&& v) {
        if (stack_.empty()) {
            root = std::move(v);
            return true;
        }
        frame& f = stack_.back();
        if (f.node->is_array()) f.node->push_back(std::move(v));
        else (*f.node)[f.key] = std::move(v);
        return true;
    }
    bool open(json&& v) {
        if (stack_.size() >= json_max_depth) {
            too_deep_ = true;
            problem_ = message("nesting deeper than ", json_max_depth, " levels");
            return false;
        }
        if (stack_.empty()) {
            root = std::move(v);
            stack_.push_back({&root, {}});
            return true;
        }
        frame& f = stack_.back();
        json* child = nullptr;
        if (f.node->is_array()) {
            f.node->push_back(std::move(v));
            child = &f.node->back();
        } else {
            child = &((*f.node)[f.key] = std::move(v));
        }
        stack_.push_back({child, {}});
        return true;
    }
    bool close() {
        stack_.pop_back();
        return true;
    }
    [[nodiscard]] std::string path() const {
        std::string p;
        for (std::size_t i = 0; i + 1 < stack_.size(); ++i)
            p.append("/").append(stack_[i].node->is_array() ? std::to_string(stack_[i].node->size() - 1) : json_path_key(stack_[i].key));
        return p;
    }

    std::vector<frame> stack_;
    std::size_t keys_ = 0;
};

/// Byte offset (0-based) in valid-so-far JSON text of the bracket that opens nesting level
/// `depth` + 1 (kind = 0), or of the n-th object key (kind = 1): strings are skipped as
/// tokens, so brackets and colons inside them do not count.
template <class = void>
[[nodiscard]] std::size_t json_locate(std::string_view text, int kind, std::size_t n) {
    std::size_t depth = 0, keys = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '"') {
            const std::size_t start = i;
            for (++i; i < text.size() && text[i] != '"'; ++i)
                if (text[i] == '\\') ++i;
            if (kind == 1) {
                std::size_t k = i + 1;
                while (k < text.size() && (text[k] == ' ' || text[k] == '\t' || text[k] == '\n' || text[k] == '\r')) ++k;
                if (k < text.size() && text[k] == ':' && ++keys == n) return start;
            }
        } else if (c == '[' || c == '{') {
            if (kind == 0 && ++depth > n) return i;
        } else if (c == ']' || c == '}') {
            if (depth > 0) --depth;
        }
    }
    return text.size();
}

/// Parses JSON text strictly: duplicate keys, nesting deeper than json_max_depth, numbers
/// beyond the range of a double, NUL bytes, UTF-16 and trailing text are errors.
/// @throws parse_error naming source:line:column (and the JSON path of a duplicate key).
template <class = void>
[[nodiscard]] nlohmann::json parse_json(std::string_view text, const std::string& source) {
    auto fail_at = [&](std::size_t at, const std::string& what) {
        std::size_t line = 0, column = 0;
        line_and_column(text, at, line, column);
        return parse_error(source, line, column, what);
    };
    if (text.starts_with("\xFF\xFE") || text.starts_with("\xFE\xFF"))
        throw parse_error(source, 1, 1, "the file is UTF-16 (byte-order mark): save it as UTF-8");
    if (const auto nul = text.find('\0'); nul != std::string_view::npos)
        throw fail_at(nul, "NUL byte: not JSON text (a binary file, or UTF-16 without a byte-order mark?)");
    if (trim(text.starts_with("\xEF\xBB\xBF") ? text.substr(3) : text).empty())
        throw parse_error(source, 1, 1, "empty file: expected a JSON object");
    strict_json_builder b;
    if (nlohmann::json::sax_parse(text.begin(), text.end(), &b)) return std::move(b.root);
    if (b.syntax_at_ > 0) throw fail_at(b.syntax_at_ - 1, b.problem_);
    if (b.too_deep_) throw fail_at(json_locate(text, 0, json_max_depth), b.problem_);
    if (b.duplicate_key_ > 0) {
        const std::size_t at = json_locate(text, 1, b.duplicate_key_);
        std::size_t line = 0, column = 0;
        line_and_column(text, at, line, column);
        throw parse_error(source, line, column, b.problem_path_ + ": " + b.problem_);
    }
    throw parse_error(source, 0, 0, b.problem_.empty() ? std::string("malformed JSON") : b.problem_);
}

/// Reader of one JSON document that reports errors as "source: /json/path: problem".
class json_reader {
public:
    explicit json_reader(std::string source) : source_(std::move(source)) {}

    [[noreturn]] void fail(const std::string& path, const std::string& what) const {
        throw parse_error(source_, 0, 0, path.empty() ? what : path + ": " + what);
    }
    template <class = void>
    const nlohmann::json& member(const nlohmann::json& obj, const std::string& path, const char* key) const {
        if (!obj.is_object()) fail(path, "expected an object");
        const auto it = obj.find(key);
        if (it == obj.end()) fail(path, std::string("missing field '") + key + "'");
        return *it;
    }
    template <class = void>
    double number(const nlohmann::json& obj, const std::string& path, const char* key) const {
        const auto& v = member(obj, path, key);
        if (!v.is_number()) fail(path + "/" + key, detail::message("expected a number, got ", json_brief(v)));
        return v.get<double>();
    }
    template <class = void>
    std::string string(const nlohmann::json& obj, const std::string& path, const char* key) const {
        const auto& v = member(obj, path, key);
        if (!v.is_string()) fail(path + "/" + key, detail::message("expected a string, got ", json_brief(v)));
        return v.get<std::string>();
    }
    template <class = void>
    std::vector<double> numbers(const nlohmann::json& obj, const std::string& path, const char* key) const {
        const auto& v = member(obj, path, key);
        if (!v.is_array()) fail(path + "/" + key, "expected an array of numbers");
        std::vector<double> out;
        out.reserve(v.size());
        for (std::size_t i = 0; i < v.size(); ++i) {
            if (!v[i].is_number()) fail(path + "/" + key + "/" + std::to_string(i), detail::message("expected a number, got ", json_brief(v[i])));
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

/// A dwell distribution from its JSON object at `path`; `stage` names the stage (and
/// branch) in messages. Each parameter is checked where it is read, so that the message
/// names the field as written (a gamma `scale`, not the mean derived from it).
template <class = void>
dwell_distribution dwell_from_json(const json_reader& r, const nlohmann::json& j, const std::string& path,
                                   const std::string& stage = {}) {
    const std::string dist = r.string(j, path, "dist");
    const std::string at_stage = stage.empty() ? std::string() : stage + ": ";
    const std::string who = at_stage + clip(dist) + " dwell: ";
    auto positive = [&](const char* key) {
        const double v = r.number(j, path, key);
        if (!(std::isfinite(v) && v > 0.0)) r.fail(path + "/" + key, message(who, key, " must be positive and finite, got ", v));
        return v;
    };
    auto finite = [&](const char* key) {
        const double v = r.number(j, path, key);
        if (!std::isfinite(v)) r.fail(path + "/" + key, message(who, key, " must be finite, got ", v));
        return v;
    };
    auto product = [&](double x, double y, const char* what) {
        const double v = x * y;
        if (!(std::isfinite(v) && v > 0.0))
            r.fail(path, message(who, what, " (", x, " x ", y, ") is not a positive finite number"));
        return v;
    };
    try {
        if (dist == "exponential") return dwell_distribution::exponential(j.contains("rate") ? 1.0 / positive("rate") : positive("mean"));
        if (dist == "gamma") {
            const double k = positive("shape");
            return dwell_distribution::gamma(k, j.contains("scale") ? product(k, positive("scale"), "the mean shape x scale")
                                                                    : positive("mean"));
        }
        if (dist == "lognormal") {
            if (j.contains("mu")) return dwell_distribution::lognormal_log(finite("mu"), positive("sigma"));
            return dwell_distribution::lognormal(positive("mean"), positive("sd"));
        }
        if (dist == "weibull") {
            const double k = positive("shape");
            return dwell_distribution::weibull(
                k, j.contains("scale") ? product(positive("scale"), std::tgamma(1.0 + 1.0 / k), "the mean scale x Γ(1 + 1/shape)")
                                       : positive("mean"));
        }
        if (dist == "fixed") return dwell_distribution::fixed(positive(j.contains("value") ? "value" : "mean"));
        if (dist == "empirical") {
            if (j.contains("samples")) return dwell_distribution::empirical(r.numbers(j, path, "samples"));
            return dwell_distribution::empirical(r.numbers(j, path, "values"), r.numbers(j, path, "weights"));
        }
    } catch (const model_error& e) {
        r.fail(path, at_stage + e.what());
    }
    r.fail(path + "/dist", detail::message("unknown distribution '", clip(dist), "' (exponential, gamma, lognormal, weibull, fixed, empirical)"));
}

} // namespace detail

/// JSON form of a dwell distribution, in the mean-based parameterisation.
template <class = void>
[[nodiscard]] nlohmann::json to_json(const dwell_distribution& d) {
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
template <class = void>
[[nodiscard]] model model_from_json(const nlohmann::json& j, const std::string& source = "<json>") {
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
                               detail::dwell_from_json(r, r.member(jb[k], bp, "dwell"), bp + "/dwell", detail::message("stage '", detail::clip(nm), "' branch ", k))};
                if (jb[k].contains("stalled")) {
                    if (!jb[k]["stalled"].is_boolean()) r.fail(bp + "/stalled", "expected true or false");
                    b.stalled = jb[k]["stalled"].get<bool>();
                }
                branches.push_back(std::move(b));
            }
            // the stage's own dwell is replaced by the summary when the graph is built
            stages.push_back({nm, branches.front().dwell, std::move(branches)});
        } else {
            stages.push_back({nm, detail::dwell_from_json(r, r.member(js[i], path, "dwell"), path + "/dwell", detail::message("stage '", detail::clip(nm), "'"))});
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

    // Names are unique across stages and outcomes: a transitions row names either.
    for (std::size_t i = 0; i < stages.size(); ++i) {
        const std::string path = detail::message("/stages/", i, "/name");
        for (std::size_t k = 0; k < i; ++k)
            if (stages[k].name == stages[i].name)
                r.fail(path, detail::message("duplicate stage name '", detail::clip(stages[i].name), "' (also stage ", k, ")"));
        for (const auto& o : outcomes)
            if (o.name == stages[i].name)
                r.fail(path, detail::message("stage '", detail::clip(o.name),
                                             "' has the name of an outcome: stages and outcomes need distinct names"));
    }
    for (std::size_t i = 0; i < outcomes.size(); ++i)
        for (std::size_t k = 0; k < i; ++k)
            if (outcomes[k].name == outcomes[i].name)
                r.fail("/outcomes", detail::message("duplicate outcome name '", detail::clip(outcomes[i].name), "'"));

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
            const std::string from_path = detail::message("/transitions/", detail::json_path_key(from)); // '/' and '~' escaped
            if (!row.is_object()) r.fail(from_path, "expected an object: next stage -> probability");
            if (!known(from)) r.fail(from_path, detail::message("unknown stage '", detail::clip(from), "'"));
            for (const auto& [to, p] : row.items()) {
                const std::string to_path = from_path + detail::message("/", detail::json_path_key(to));
                if (!p.is_number()) r.fail(to_path, detail::message("expected a probability, got ", detail::json_brief(p)));
                if (!known(to)) r.fail(to_path, detail::message("stage '", detail::clip(from), "': unknown target stage '", detail::clip(to), "'"));
                const double v = p.template get<double>();
                if (!(v >= 0.0 && v <= 1.0))
                    r.fail(to_path, detail::message("stage '", detail::clip(from), "': transition probability to '", detail::clip(to),
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
                const std::string path = detail::message("/overdispersion/stages/", detail::json_path_key(nm));
                const auto idx = m.graph.find(nm);
                if (!idx || !m.graph.is_open(*idx)) r.fail(path, detail::message("'", detail::clip(nm), "' is not an open stage of the model"));
                if (!v.is_number()) r.fail(path, detail::message("expected a number, got ", detail::json_brief(v)));
                m.stage_overdispersion[*idx] = check(v.template get<double>(), path);
            }
        }
        if (!jv.contains("sigma") && !jv.contains("stages"))
            r.fail("/overdispersion", "needs 'sigma' (every stage) or 'stages' (per stage)");
    }
    if (j.contains("deal_size")) {
        const auto& jd = j["deal_size"];
        const std::string dist = r.string(jd, "/deal_size", "dist");
        if (dist != "lognormal" && dist != "empirical")
            r.fail("/deal_size/dist", detail::message("only 'lognormal' and 'empirical' deal sizes are supported, got '", detail::clip(dist), "'"));
        if (dist == "empirical") {
            std::vector<double> v = r.numbers(jd, "/deal_size", "values");
            std::vector<double> w = jd.contains("weights") ? r.numbers(jd, "/deal_size", "weights")
                                                           : std::vector<double>(v.size(), 1.0);
            m.deal_size = r.at("/deal_size", [&] { return deal_size_distribution::empirical(std::move(v), std::move(w)); });
        } else {
            m.deal_size = r.at("/deal_size", [&] {
                if (jd.contains("mean") && !jd.contains("median")) {
                    const double mean = r.number(jd, "/deal_size", "mean"), sg = r.number(jd, "/deal_size", "sigma");
                    const double median = mean * std::exp(-0.5 * sg * sg);
                    if (std::isfinite(mean) && mean > 0.0 && std::isfinite(sg) && !(median > 0.0))
                        r.fail("/deal_size", detail::message("deal_size: mean ", mean, " with sigma ", sg,
                                                             " gives a median that underflows to 0"));
                    return deal_size_distribution(median, sg);
                }
                return deal_size_distribution(r.number(jd, "/deal_size", "median"), r.number(jd, "/deal_size", "sigma"));
            });
        }
        if (!std::isfinite(m.deal_size->mean()))
            r.fail("/deal_size", detail::message("deal_size: median ", m.deal_size->median(), " with sigma ", m.deal_size->sigma(),
                                                 " gives an infinite mean (", m.deal_size->mean(), ")"));
    }
    if (j.contains("arrivals")) {
        const auto& ja = j["arrivals"];
        arrival_process a;
        const std::string st = r.string(ja, "/arrivals", "stage");
        const auto idx = m.graph.find(st);
        if (!idx) r.fail("/arrivals/stage", detail::message("unknown stage '", detail::clip(st), "'"));
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

/// Reads a model from a stream of JSON text, strictly (detail::parse_json): duplicate keys,
/// nesting deeper than 64 levels, numbers beyond the range of a double and NUL bytes are
/// errors. @throws parse_error (with line and column for malformed JSON) or as model_from_json.
template <class = void>
[[nodiscard]] model read_model(std::istream& in, const std::string& source = "<stream>") {
    const std::string text(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>{});
    const nlohmann::json j = detail::parse_json(text, source);
    return model_from_json(j, source);
}

/// Loads a model from a JSON file. @throws error if the file cannot be opened.
template <class = void>
[[nodiscard]] model load_model(const std::string& path) {
    std::istringstream in(detail::read_file_bytes(path, "model file")); // a directory is an error, not a read failure
    return read_model(in, path);
}

/// The JSON form of a model (general form, with explicit transitions).
template <class = void>
[[nodiscard]] nlohmann::json to_json(const model& m) {
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

/// The nlohmann ADL hook: `nlohmann::json j = m;` (or nlohmann::ordered_json) gives the JSON
/// that write_model writes, keys in the same (alphabetical) order as the saved files
/// (docs/model-format.md); model_from_json(j) reads it back.
template <class Json>
    requires nlohmann::detail::is_basic_json<Json>::value
void to_json(Json& j, const model& m) {
    j = Json(to_json(m));
}

/// The nlohmann ADL hook of a dwell distribution: `nlohmann::json j = d;` (the form to_json(d) returns).
template <class Json>
    requires nlohmann::detail::is_basic_json<Json>::value
void to_json(Json& j, const dwell_distribution& d) {
    j = Json(to_json(d));
}

/// The model as indented JSON text. @throws error if a name is not valid UTF-8 (a model
/// built in code; files read are checked).
template <class = void>
[[nodiscard]] std::string model_json_text(const model& m) {
    try {
        return to_json(m).dump(2) + '\n';
    } catch (const nlohmann::json::type_error& e) {
        throw error(detail::message("model '", detail::clip(m.name), "': cannot be written as JSON: ", e.what()));
    }
}

/// Writes a model as indented JSON. @throws error as model_json_text (before writing anything).
template <class = void>
void write_model(std::ostream& out, const model& m) { out << model_json_text(m); }

/// Saves a model to a JSON file, all or nothing (detail::write_file_atomic: a temporary file
/// renamed over `path`, so an existing file is never left truncated).
/// @throws error if the file cannot be written (the old file, if any, is kept).
template <class = void>
void save_model(const model& m, const std::string& path) {
    detail::write_file_atomic(path, model_json_text(m), "model file");
}

} // namespace pipecast
