// pipecast forecast — the weighted forecast of a book of open deals, and optionally the
// value expected to be won within a horizon.
//
//   pipecast forecast --model M.json --deals D.csv [--horizon H] [--as-of DATE] [--json]
//
// The JSON keys weighted_total, by_stage[].{stage,count,amount,win_probability,weighted}
// and within_horizon.{horizon,expected} are a fixed interface for downstream tools.
#include "cli_common.hpp"

#include <pipecast/forecast.hpp>

#include <algorithm>
#include <memory>
#include <numeric>
#include <optional>

namespace pipecast_cli {
namespace {

struct forecast_args {
    std::string model_path;
    std::string deals_path;
    std::optional<double> horizon;
    std::optional<std::string> as_of;
    bool json = false;
};

/// "day" -> "days" for a horizon of h units.
std::string units(const std::string& unit, double h) {
    if (h == 1.0 || unit.empty() || unit.back() == 's') return unit;
    return unit + "s";
}

/// 90 -> "90", 2.5 -> "2.5".
std::string number(double v) {
    std::ostringstream os;
    os << v;
    return os.str();
}

/// Indices of groups sorted by weighted value, largest first (ties by name).
template <class Group>
std::vector<std::size_t> by_weight(const std::vector<Group>& groups) {
    std::vector<std::size_t> order(groups.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        if (groups[a].weighted != groups[b].weighted) return groups[a].weighted > groups[b].weighted;
        return groups[a].key < groups[b].key;
    });
    return order;
}

/// The JSON report; keys in a reading order (ordered_json), numbers at full precision.
nlohmann::ordered_json to_json(const pipecast::model& m, const pipecast::weighted_forecast_result& f,
                       const std::optional<pipecast::period_forecast_result>& q, const forecast_args& args) {
    nlohmann::ordered_json j;
    j["model"] = m.name;
    j["currency"] = f.currency.empty() ? m.currency : f.currency;
    j["time_unit"] = m.time_unit;
    if (args.as_of) j["as_of"] = *args.as_of;
    j["deals"] = f.count;
    j["total_amount"] = f.total_amount;
    j["weighted_total"] = f.weighted_total;
    j["overridden"] = f.overridden;
    j["by_stage"] = nlohmann::ordered_json::array();
    for (std::size_t s = 0; s < f.by_stage.size(); ++s) {
        const auto& x = f.by_stage[s];
        nlohmann::ordered_json line = {{"stage", x.stage},         {"count", x.count},       {"amount", x.amount},
                               {"win_probability", x.win_probability}, {"weighted", x.weighted},
                               {"overridden", x.overridden}};
        if (q) line["expected_within_horizon"] = q->by_stage[s].expected;
        j["by_stage"].push_back(line);
    }
    auto groups = [&](const char* key, const std::vector<pipecast::group_forecast>& gs,
                      const std::vector<pipecast::group_period_forecast>* within) {
        nlohmann::ordered_json out = nlohmann::ordered_json::array();
        for (std::size_t k = 0; k < gs.size(); ++k) {
            nlohmann::ordered_json line = {{key, gs[k].key},           {"count", gs[k].count},
                                   {"amount", gs[k].amount},   {"weighted", gs[k].weighted},
                                   {"overridden", gs[k].overridden}};
            if (within) line["expected_within_horizon"] = (*within)[k].expected;
            out.push_back(line);
        }
        return out;
    };
    j["by_owner"] = groups("owner", f.by_owner, q ? &q->by_owner : nullptr);
    j["by_category"] = groups("category", f.by_category, q ? &q->by_category : nullptr);
    if (q) {
        nlohmann::ordered_json w = {{"horizon", q->horizon},
                            {"expected", q->expected},
                            {"method", std::string(pipecast::to_string(q->method))},
                            {"step", q->step},
                            {"error_estimate", q->error_estimate}};
        w["by_stage"] = nlohmann::ordered_json::array();
        for (const auto& x : q->by_stage)
            w["by_stage"].push_back({{"stage", x.stage}, {"count", x.count}, {"amount", x.amount}, {"expected", x.expected}});
        j["within_horizon"] = w;
    }
    return j;
}

void print_tables(const pipecast::model& m, const pipecast::weighted_forecast_result& f,
                  const std::optional<pipecast::period_forecast_result>& q, const forecast_args& args) {
    const std::string currency = f.currency.empty() ? m.currency : f.currency;
    const std::string within = q ? "Won within " + number(q->horizon) + " " + units(m.time_unit, q->horizon) : "";
    std::ostream& os = std::cout;

    os << "Pipeline forecast" << (m.name.empty() ? "" : ": " + m.name) << '\n';
    os << f.count << " open deals";
    if (!currency.empty()) os << ", amounts in " << currency;
    if (args.as_of) os << ", ages as of " << *args.as_of;
    os << '\n' << '\n';

    // By stage, in funnel order.
    std::vector<std::string> header{"Stage", "Deals", "Amount", "P(win)", "Weighted"};
    if (q) header.push_back(within);
    table stages(header);
    for (std::size_t s = 0; s < f.by_stage.size(); ++s) {
        const auto& x = f.by_stage[s];
        std::vector<std::string> row{x.stage, std::to_string(x.count), money(x.amount),
                                     percent(x.win_probability) + (x.overridden ? "*" : " "), money(x.weighted)};
        if (q) row.push_back(money(q->by_stage[s].expected));
        stages.add_row(std::move(row));
    }
    stages.add_rule();
    const double blended = f.total_amount > 0.0 ? f.weighted_total / f.total_amount : 0.0;
    std::vector<std::string> total{"Total", std::to_string(f.count), money(f.total_amount), percent(blended) + " ",
                                   money(f.weighted_total)};
    if (q) total.push_back(money(q->expected));
    stages.add_row(std::move(total));
    stages.print(os);

    // By owner and by category, largest weighted value first.
    auto group_table = [&](const char* title, const char* key, const std::vector<pipecast::group_forecast>& gs,
                           const std::vector<pipecast::group_period_forecast>* w) {
        if (gs.size() == 1 && gs[0].key.empty()) return; // the book has no such column
        os << '\n' << title << '\n';
        std::vector<std::string> h{key, "Deals", "Amount", "Weighted", "Share"};
        if (w) h.push_back(within);
        table t(h);
        for (const std::size_t k : by_weight(gs)) {
            const auto& x = gs[k];
            std::vector<std::string> row{x.key.empty() ? "(none)" : x.key, std::to_string(x.count), money(x.amount),
                                         money(x.weighted),
                                         percent(f.weighted_total > 0.0 ? x.weighted / f.weighted_total : 0.0)};
            if (w) row.push_back(money((*w)[k].expected));
            t.add_row(std::move(row));
        }
        t.print(os);
    };
    group_table("By owner", "Owner", f.by_owner, q ? &q->by_owner : nullptr);
    group_table("By forecast category", "Category", f.by_category, q ? &q->by_category : nullptr);

    // Notes a reader needs to trust the numbers.
    os << '\n';
    os << "Weighted = amount x P(win): the chance a deal in that stage is eventually won.\n";
    if (f.overridden)
        os << "* " << f.overridden << (f.overridden == 1 ? " deal uses its" : " deals use their")
           << " own probability override instead of P(win).\n";
    if (q) {
        os << within << " = amount x P(won within " << number(q->horizon) << " " << units(m.time_unit, q->horizon)
           << " | stage, time already in stage).\n  Method: ";
        if (q->method == pipecast::period_method::markov_exact)
            os << "exact (every stage has exponential dwell times).\n";
        else
            os << "renewal equation, step " << fixed(q->step, 3) << " " << units(m.time_unit, 2.0)
               << "; age-interpolation error <= " << fixed(q->error_estimate, 2) << (currency.empty() ? "" : " ")
               << currency << ".\n";
    }
}

void run_forecast(const forecast_args& args) {
    if (args.horizon && !(std::isfinite(*args.horizon) && *args.horizon >= 0.0))
        throw pipecast::argument_error(pipecast::detail::message(
            "--horizon must be a finite number >= 0 (in the model's time unit), got ", *args.horizon));
    const pipecast::model m = load_model_file(args.model_path);
    pipecast::book_csv_options opt;
    opt.as_of = args.as_of;
    opt.days_per_unit = pipecast::days_per_unit(m.time_unit);
    const pipecast::book b = pipecast::load_book_csv(args.deals_path, m.graph, opt);

    const pipecast::absorption_analysis a = pipecast::analyse(m.graph);
    const auto f = pipecast::weighted_forecast(m.graph, b, a);
    std::optional<pipecast::period_forecast_result> q;
    if (args.horizon) q = pipecast::period_forecast(m.graph, b, *args.horizon);

    if (args.json) std::cout << to_json(m, f, q, args).dump(2) << '\n';
    else print_tables(m, f, q, args);
}

} // namespace

void add_forecast_command(CLI::App& app) {
    auto args = std::make_shared<forecast_args>();
    CLI::App* cmd = app.add_subcommand(
        "forecast", "Weighted forecast of a book of open deals (sum of amount x P(win | stage)), by stage, owner and "
                    "category; with --horizon, also the value expected to be won within that time");
    cmd->add_option("--model", args->model_path, "Model JSON file (stages, dwell times, transitions)")->required();
    cmd->add_option("--deals", args->deals_path, "Open deals CSV (id, stage, amount; optional age or entered, owner, "
                                                 "category, currency, probability)")
        ->required();
    cmd->add_option("--horizon", args->horizon, "Also forecast the value won within this time (model time unit, e.g. 90)");
    cmd->add_option("--as-of", args->as_of, "Date (YYYY-MM-DD) ages are measured to, for a deals file with an "
                                            "'entered' column");
    cmd->add_flag("--json", args->json, "Print one JSON object instead of tables");
    cmd->callback([args] { run_forecast(*args); });
}

} // namespace pipecast_cli
