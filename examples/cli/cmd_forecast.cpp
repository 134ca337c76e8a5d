// pipecast forecast — the weighted forecast of a book of open deals, and optionally the
// value expected to be won within a horizon.
//
//   pipecast forecast --model M.json --deals D.csv [--horizon H] [--as-of DATE]
//                     [--stalled-threshold P] [--json]
//                     [--period month|quarter|year [--fiscal-year-start MM] [--buckets N]
//                      [--quotas owners.csv] [--history H.csv]] [--per-deal FILE.csv]
//
// --period (with --as-of) adds the calendar forecast (calendar.hpp): per period Closed (the
// wins of --history before the as-of date), the open book's expected value, a Monte Carlo
// P10-P90 (4000 paths, the open book, the model's overdispersion), the forecast categories'
// roll-up and the owners against --quotas; JSON key `calendar`. --per-deal writes the rows
// of report's --per-deal (JSON key `per_deal`).
//
// The JSON keys weighted_total, by_stage[].{stage,count,amount,win_probability,weighted}
// and within_horizon.{horizon,expected} are a fixed interface for downstream tools.
// weighted_total is the CRM-style Σ amount × P(win | stage); age_aware_total beside it is
// Σ amount × P(win | stage, age) (equal for models without branched stages), with the
// stalled deals the model sees (expected_stalled, likely_stalled).
#include <pipecast/forecast/forecast.hpp>

#include "calendar_cli.hpp"
#include "cli_common.hpp"

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
    double stalled_threshold = 0.5;
    bool json = false;
    calendar_args cal;
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

void print_tables(const pipecast::model& m, const pipecast::weighted_forecast_result& f,
                  const pipecast::age_aware_forecast_result& aa,
                  const std::optional<pipecast::period_forecast_result>& q, const forecast_args& args) {
    // Models with branched stages: the age-aware forecast and the stalled deals beside the
    // CRM-style one (for other models they are equal and nothing stalls).
    const bool aged = m.graph.has_branches();
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
    if (aged) header.insert(header.end(), {"P(win|age)", "Age-aware"});
    if (q) header.push_back(within);
    if (aged) header.push_back("Likely stalled");
    table stages(header);
    for (std::size_t s = 0; s < f.by_stage.size(); ++s) {
        const auto& x = f.by_stage[s];
        const auto& y = aa.by_stage[s];
        std::vector<std::string> row{x.stage, std::to_string(x.count), money(x.amount),
                                     percent(x.win_probability) + (x.overridden ? "*" : " "), money(x.weighted)};
        if (aged) {
            row.push_back(percent(y.amount > 0.0 ? y.age_weighted / y.amount : x.win_probability));
            row.push_back(money(y.age_weighted));
        }
        if (q) row.push_back(money(q->by_stage[s].expected));
        if (aged) row.push_back(std::to_string(y.likely_stalled));
        stages.add_row(std::move(row));
    }
    stages.add_rule();
    const double blended = f.total_amount > 0.0 ? f.weighted_total / f.total_amount : 0.0;
    std::vector<std::string> total{"Total", std::to_string(f.count), money(f.total_amount), percent(blended) + " ",
                                   money(f.weighted_total)};
    if (aged) {
        total.push_back(percent(aa.total_amount > 0.0 ? aa.age_weighted_total / aa.total_amount : 0.0));
        total.push_back(money(aa.age_weighted_total));
    }
    if (q) total.push_back(money(q->expected));
    if (aged) total.push_back(std::to_string(aa.likely_stalled));
    stages.add_row(std::move(total));
    stages.print(os);

    // By owner and by category, largest weighted value first.
    auto group_table = [&](const char* title, const char* key, const std::vector<pipecast::group_forecast>& gs,
                           const std::vector<pipecast::group_age_forecast>& ages,
                           const std::vector<pipecast::group_period_forecast>* w) {
        if (gs.size() == 1 && gs[0].key.empty()) return; // the book has no such column
        os << '\n' << title << '\n';
        std::vector<std::string> h{key, "Deals", "Amount", "Weighted", "Share"};
        if (aged) h.push_back("Age-aware");
        if (w) h.push_back(within);
        if (aged) h.push_back("Likely stalled");
        table t(h);
        for (const std::size_t k : by_weight(gs)) {
            const auto& x = gs[k];
            std::vector<std::string> row{x.key.empty() ? "(none)" : x.key, std::to_string(x.count), money(x.amount),
                                         money(x.weighted),
                                         percent(f.weighted_total > 0.0 ? x.weighted / f.weighted_total : 0.0)};
            if (aged) row.push_back(money(ages[k].age_weighted));
            if (w) row.push_back(money((*w)[k].expected));
            if (aged) row.push_back(std::to_string(ages[k].likely_stalled));
            t.add_row(std::move(row));
        }
        t.print(os);
    };
    group_table("By owner", "Owner", f.by_owner, aa.by_owner, q ? &q->by_owner : nullptr);
    group_table("By forecast category", "Category", f.by_category, aa.by_category, q ? &q->by_category : nullptr);

    // Notes a reader needs to trust the numbers.
    os << '\n';
    os << "Weighted = amount x P(win): the chance a deal in that stage is eventually won.\n";
    if (aged)
        os << "  That is the CRM-style figure: it ignores how long a deal has sat in its stage.\n"
           << "Age-aware = amount x P(win | stage, time already in stage): wins come early, so old deals count less.\n"
           << "Likely stalled = deals with P(stalled | stage, time in stage) >= " << percent(aa.stalled_threshold, 0)
           << " (no-decision deals, closed lost at a clean-up);\n  expected stalled " << fixed(aa.expected_stalled, 1)
           << " deals, " << money(aa.stalled_amount) << (currency.empty() ? "" : " ") << currency
           << "; likely stalled " << aa.likely_stalled << " deals, " << money(aa.likely_stalled_amount)
           << (currency.empty() ? "" : " ") << currency << ".\n";
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
    if (!(args.stalled_threshold > 0.0 && args.stalled_threshold <= 1.0))
        throw pipecast::argument_error(pipecast::detail::message(
            "--stalled-threshold must be in (0, 1], got ", args.stalled_threshold));
    if (args.horizon && !(std::isfinite(*args.horizon) && *args.horizon >= 0.0))
        throw pipecast::argument_error(pipecast::detail::message(
            "--horizon must be a finite number >= 0 (in the model's time unit), got ", *args.horizon));
    const pipecast::model m = load_model_file(args.model_path);
    pipecast::book_csv_options opt;
    opt.as_of = args.as_of;
    opt.days_per_unit = pipecast::days_per_unit(m.time_unit);
    const pipecast::book b = load_book_input(args.deals_path, m.graph, opt, book_input());

    const pipecast::absorption_analysis a = pipecast::analyse(m.graph);
    const auto f = pipecast::weighted_forecast(m.graph, b, a);
    pipecast::age_aware_options ao;
    ao.stalled_threshold = args.stalled_threshold;
    // The reps' close dates, when the deals file has them (and --as-of says what is past).
    const double dpu = opt.days_per_unit;
    const double t0 = args.as_of ? as_of_time(args.as_of, dpu, "--as-of") : 0.0;
    rep_close rc;
    if (args.as_of) rc = rep_close_dates(args.deals_path, m, b, t0, dpu);
    const bool rows_wanted = !args.cal.per_deal.empty() || rc.any();
    ao.per_deal = rows_wanted;
    const auto aa = pipecast::age_aware_forecast(m.graph, b, ao);
    std::optional<pipecast::period_forecast_result> q;
    pipecast::period_forecast_options po;
    po.per_deal = rows_wanted;
    if (args.horizon) q = pipecast::period_forecast(m.graph, b, *args.horizon, po);

    // The calendar forecast and the per-deal rows (calendar.hpp).
    std::optional<pipecast::calendar_forecast_result> cal;
    if (!args.cal.period.empty()) {
        pipecast::simulation_options so;
        so.paths = 4000;
        if (m.overdispersed()) so.stage_correlation = m.overdispersion_by_stage();
        cal = pipecast::calendar_forecast(m, b, calendar_options_of(args.cal, m, as_of_time(args.as_of, dpu, "--period"), so));
    } else if (!args.cal.quotas.empty() || !args.cal.history.empty()) {
        throw pipecast::argument_error(args.cal.quotas.empty() ? "--history needs --period" : "--quotas needs --period");
    }
    std::vector<pipecast::deal_forecast> rows;
    if (rows_wanted) {
        std::vector<char> stale(b.size(), 0);
        for (std::size_t i = 0; i < b.size(); ++i) stale[i] = aa.deal_stalled_probability[i] >= ao.stalled_threshold ? 1 : 0;
        // P(won within): the horizon, else the rest of the current period, else eventually.
        const std::vector<double>& within = q ? q->deal_probability : cal ? cal->deal_won_by.front() : aa.deal_win_probability;
        std::vector<double> close;
        if (cal && cal->simulation) close = cal->simulation->deal_expected_close_time;
        rows = pipecast::deal_forecasts(m.graph, b, t0, aa.deal_win_probability, within, close, stale);
        if (!args.cal.per_deal.empty()) write_per_deal(args.cal.per_deal, rows, args.as_of.has_value(), dpu, rc);
    }

    if (args.json) {
        // The JSON is the library's (results_json.hpp); keys in a reading order (ordered_json).
        json_out j = pipecast::forecast_document{m, f, aa, q ? &*q : nullptr, args.as_of};
        if (cal) j["calendar"] = calendar_json(*cal, dpu);
        if (!args.cal.per_deal.empty()) j["per_deal"] = deals_json(rows, args.as_of.has_value(), dpu, &rc);
        std::cout << j.dump(2) << '\n';
    } else {
        print_tables(m, f, aa, q, args);
        if (cal) print_calendar(std::cout, *cal);
        print_rep_close(std::cout, rows, rc, dpu);
        if (!args.cal.per_deal.empty()) std::cout << "\nPer-deal rows: " << args.cal.per_deal << " (" << rows.size() << " deals)\n";
    }
}

} // namespace

void add_forecast_command(CLI::App& app) {
    auto args = std::make_shared<forecast_args>();
    CLI::App* cmd = app.add_subcommand(
        "forecast", "Weighted forecast of a book of open deals (sum of amount x P(win | stage)), by stage, owner and "
                    "category; with --horizon, also the value expected to be won within that time");
    cmd->add_option("--model", args->model_path, "Model JSON file (stages, dwell times, transitions)")->required();
    add_input_options(cmd, book_input());
    cmd->add_option("--deals", args->deals_path, "Open deals CSV (id, stage, amount; optional age or entered, owner, "
                                                 "category, currency, probability)")
        ->required();
    cmd->add_option("--horizon", args->horizon, "Also forecast the value won within this time (model time unit, e.g. 90)");
    cmd->add_option("--as-of", args->as_of, "Date (YYYY-MM-DD) ages are measured to, for a deals file with an "
                                            "'entered' column");
    cmd->add_option("--stalled-threshold", args->stalled_threshold,
                    "A deal counts as likely stalled when P(stalled | stage, time in stage) reaches this (models "
                    "with branched stages)")
        ->capture_default_str();
    cmd->add_flag("--json", args->json, "Print one JSON object instead of tables");
    add_calendar_options(cmd, args->cal);
    cmd->callback([args] { run_forecast(*args); });
}

} // namespace pipecast_cli
