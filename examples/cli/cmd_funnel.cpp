// pipecast funnel — the ideal funnel a quota needs, and the actual book held against it.
#include <pipecast/funnel/funnel.hpp>

#include "cli_common.hpp"

#include <memory>
#include <optional>
#include <string>

namespace pipecast_cli {
namespace {

struct funnel_options {
    std::string model_path;
    std::string deals_path;
    std::string as_of;
    std::string entry;
    double quota = 0.0;
    double period = 0.0;
    std::optional<double> deal_size;
    double elapsed = 0.0;
    double won = 0.0;
    double quantile = 0.9;
    double lever_step = 0.1;
    bool json = false;
};

std::string opt_fixed(const std::optional<double>& v, int decimals, const char* missing = "-") {
    return v ? fixed(*v, decimals) : std::string(missing);
}

void print_text(const pipecast::model& mdl, const pipecast::ideal_funnel_result& f) {
    const pipecast::stage_graph& g = mdl.graph;
    const std::string unit = mdl.time_unit.empty() ? "time units" : mdl.time_unit + "s";
    const std::string cur = mdl.currency.empty() ? "" : " " + mdl.currency;
    auto& os = std::cout;
    os << "Ideal funnel for " << (mdl.name.empty() ? "the model" : mdl.name) << ": quota " << money(f.quota) << cur
       << " per " << fixed(f.period, 1) << " " << unit << ", average deal " << money(f.deal_size) << cur << "\n";
    os << "  deals to win per period: " << fixed(f.deals_to_win, 2) << " (" << money(f.deals_to_win_whole)
       << " whole deals)\n";
    os << "  new deals into " << g.name(f.entry_stage) << " per period: " << fixed(f.new_deals_per_period, 1)
       << " (= deals to win / P(win) " << percent(f.entry_win_probability) << ")\n";
    os << "  mean cycle: " << fixed(f.cycle_length, 1) << " " << unit << " to close, " << fixed(f.mean_time_to_win, 1)
       << " to win\n\n";

    os << "Steady state (by sales cycle): deals entering each stage per period, and standing in it\n";
    std::vector<std::string> head = {"Stage", "P(win)", "Enter/period", "In stage", "Value", "Weighted"};
    if (f.gap) {
        for (const char* h : {"Actual", "Actual value", "Short (deals)", "Short %"}) head.emplace_back(h);
    }
    table steady(head);
    for (const auto& s : f.stages) {
        std::vector<std::string> row = {s.name, s.unreachable ? "unreachable" : percent(s.win_probability),
                                        fixed(s.entering_per_period, 1), fixed(s.in_stage, 1),
                                        money(s.in_stage_value), money(s.weighted_value)};
        if (f.gap) {
            const auto& sg = f.gap->stages[s.index];
            row.push_back(fixed(sg.actual_count, 0));
            row.push_back(money(sg.actual_value));
            row.push_back(fixed(sg.shortfall_count, 1));
            row.push_back(sg.relative_shortfall ? percent(*sg.relative_shortfall) : "-");
        }
        steady.add_row(std::move(row));
    }
    steady.add_rule();
    std::vector<std::string> total = {"Total", "", "", fixed(f.pipeline_count, 1), money(f.pipeline_value),
                                      money(f.weighted_value)};
    if (f.gap) {
        total.push_back(fixed(f.gap->actual_count, 0));
        total.push_back(money(f.gap->actual_value));
        total.push_back(fixed(f.pipeline_count - f.gap->actual_count, 1));
        total.push_back("");
    }
    steady.add_row(std::move(total));
    steady.print(os);

    const std::string q = "q" + fixed(100.0 * f.quantile, 0);
    os << "\nThis period (by quota): " << fixed(f.remaining_time, 1) << " of " << fixed(f.period, 1) << " " << unit
       << " left, " << money(f.remaining_quota) << cur << " (" << fixed(f.remaining_deals_to_win, 2)
       << " deals) still to win\n";
    table phased({"Stage", "Time to win", "Time " + q, "P(win in time)", "Closes?", "Hold now", "Hold (untimed)",
                  "Enter by", "Enter by " + q});
    for (const auto& s : f.stages) {
        if (s.unreachable) {
            phased.add_row({s.name, "unreachable", "-", "0.0%", "never", "-", "-", "-", "-"});
            continue;
        }
        const std::string closes = s.can_close_quantile ? "yes" : s.can_close_mean ? "on average" : "no";
        phased.add_row({s.name, opt_fixed(s.mean_time_to_win, 1), opt_fixed(s.time_to_win_quantile, 1),
                        percent(s.win_within_remaining), closes, opt_fixed(s.hold_now, 1, "cannot"),
                        opt_fixed(s.hold_now_untimed, 1), opt_fixed(s.enter_by_mean, 1), opt_fixed(s.enter_by_quantile, 1)});
    }
    phased.print(os);
    os << "  Hold now: deals the stage alone must hold to make the rest of the period (remaining deals / P(win in time)).\n"
       << "  Enter by: latest entry into the stage, in " << unit << " from the start of a period, for a won deal to\n"
       << "  close inside it (negative: that long before the period starts).\n";

    const auto& c = f.coverage;
    os << "\nCoverage: ideal pipeline " << money(f.pipeline_value) << cur << " = "
       << (c.required ? fixed(*c.required, 2) + "x the remaining quota" : std::string("(nothing left to win)"))
       << "; steady state " << fixed(c.steady_state, 2) << "x a period's quota\n"
       << "  = 1 / win rate (" << fixed(c.inverse_win_rate, 2) << "x) x cycle / period (" << fixed(c.cycle_length, 1)
       << " / " << fixed(f.period, 1) << " = " << fixed(c.cycle_over_period, 3) << "); rule of thumb "
       << fixed(c.rule_of_thumb_low, 0) << "x-" << fixed(c.rule_of_thumb_high, 0) << "x holds when the cycle is one period and\n"
       << "  the win rate 25%-33%; this model is "
       << (c.steady_state < c.rule_of_thumb_low ? "below it"
                                                : c.steady_state > c.rule_of_thumb_high ? "above it" : "within it")
       << ".";
    if (c.actual) os << " Actual book: " << fixed(*c.actual, 2) << "x the remaining quota.";
    os << "\n";

    if (f.gap) {
        const auto& gp = *f.gap;
        os << "\nActual book: " << fixed(gp.actual_count, 0) << " deals, " << money(gp.actual_value) << cur << "\n"
           << "  weighted forecast  " << money(gp.weighted_forecast)
           << (g.has_branches() ? " (age-aware: P(win | stage, time in stage))" : "") << " vs remaining quota " << money(f.remaining_quota)
           << ": " << (gp.forecast_gap > 0 ? "short by " + money(gp.forecast_gap) : "ahead by " + money(-gp.forecast_gap))
           << "\n"
           << "  in-period forecast " << money(gp.in_period_forecast) << " (wins expected before the period ends): "
           << (gp.in_period_gap > 0 ? "short by " + money(gp.in_period_gap) : "ahead by " + money(-gp.in_period_gap))
           << "\n";
        os << "  bottleneck this period: " << (gp.bottleneck ? g.name(*gp.bottleneck) : std::string("none"))
           << "; for the pipeline: " << (gp.pipeline_bottleneck ? g.name(*gp.pipeline_bottleneck) : std::string("none"))
           << "\n";
    }

    os << "\nSales velocity = open deals x P(win | entry) x deal size / time to close (every outcome; as pipecast kpi): required " << money(f.velocity.required) << cur
       << " per " << mdl.time_unit << ", ideal funnel " << money(f.velocity.ideal.velocity);
    if (f.velocity.actual)
        os << ", actual book " << money(f.velocity.actual->velocity) << " (" << fixed(f.velocity.actual->open_opportunities, 0)
           << " x " << percent(f.velocity.actual->win_rate) << " x " << money(f.velocity.actual->deal_size) << " / "
           << fixed(f.velocity.actual->cycle_length, 1) << ")";
    os << "\n";
    std::vector<std::string> lh = {"Lever", "Step", "Velocity after", "Change", "New deals/period", "Pipeline value"};
    if (f.gap) {
        lh.emplace_back("In-period after");
        lh.emplace_back("Needed to close gap");
    }
    table levers(lh);
    for (const auto& l : f.levers) {
        std::vector<std::string> row = {std::string(pipecast::to_string(l.lever)), percent(l.step, 0),
                                        money(l.velocity_after), percent(l.velocity_after / l.velocity_before - 1.0),
                                        fixed(l.new_deals_per_period_after, 1), money(l.pipeline_value_after)};
        if (f.gap) {
            row.push_back(l.in_period_forecast_after ? money(*l.in_period_forecast_after) : "-");
            std::string needed = l.needed ? percent(*l.needed) : "cannot";
            if (l.extra_deals && *l.extra_deals > 0.0)
                needed = (l.needed ? needed + " = " : std::string()) + "+" + fixed(*l.extra_deals, 1) + " new deals";
            row.push_back(std::move(needed));
        }
        levers.add_row(std::move(row));
    }
    levers.print(os);
    if (f.gap) {
        std::string cheapest = "no gap";
        if (f.gap->cheapest_lever) cheapest = std::string(pipecast::to_string(*f.gap->cheapest_lever));
        else if (f.gap->in_period_gap > 0 && f.levers[0].extra_deals)
            cheapest = "none in relative terms (empty book); " + fixed(*f.levers[0].extra_deals, 1) +
                       " new deals entering now would close it";
        else if (f.gap->in_period_gap > 0) cheapest = "none can close it";
        os << "  Cheapest lever (smallest relative improvement that closes this period's gap): " << cheapest << "\n";
    }
}

void run_funnel(const funnel_options& o) {
    const pipecast::model mdl = load_model_file(o.model_path);
    pipecast::funnel_target t;
    t.quota = o.quota;
    t.period = o.period;
    t.deal_size = o.deal_size;
    t.elapsed = o.elapsed;
    t.won_to_date = o.won;
    t.quantile = o.quantile;
    t.lever_step = o.lever_step;
    if (!o.entry.empty()) {
        const std::size_t e = mdl.graph.index_of(o.entry);
        if (!mdl.graph.is_open(e))
            throw pipecast::argument_error("funnel: --entry '" + o.entry + "' is an outcome, not an open stage");
        t.entry_stage = e;
    }
    if (!t.deal_size && !mdl.deal_size)
        throw pipecast::argument_error("funnel: no deal size: give --deal-size, or use a model with a deal_size distribution");
    pipecast::ideal_funnel_result f;
    if (!o.deals_path.empty()) {
        pipecast::book_csv_options bo;
        if (!o.as_of.empty()) bo.as_of = o.as_of;
        bo.days_per_unit = pipecast::days_per_unit(mdl.time_unit.empty() ? "day" : mdl.time_unit);
        const pipecast::book b = pipecast::load_book_csv(o.deals_path, mdl.graph, bo);
        f = pipecast::ideal_funnel(mdl, t, b);
    } else {
        f = pipecast::ideal_funnel(mdl, t);
    }
    if (o.json) print_json(pipecast::funnel_document{mdl, f}); // results_json.hpp
    else print_text(mdl, f);
}

} // namespace

void add_funnel_command(CLI::App& app) {
    auto o = std::make_shared<funnel_options>();
    CLI::App* cmd = app.add_subcommand(
        "funnel", "Ideal funnel: the pipeline a quota needs per stage (steady state and this period), coverage, "
                  "velocity and levers; with --deals, the actual book against it");
    cmd->add_option("--model,-m", o->model_path, "Model JSON file")->required();
    cmd->add_option("--quota,-q", o->quota, "Quota (value to win) per period")->required();
    cmd->add_option("--period,-p", o->period, "Period length in the model's time unit (e.g. 90 days)")->required();
    cmd->add_option("--deal-size,-s", o->deal_size, "Average deal size (default: the model's deal_size mean)");
    cmd->add_option("--deals,-d", o->deals_path, "Open book CSV to compare against the ideal funnel");
    cmd->add_option("--as-of", o->as_of, "As-of date (ISO-8601) for books with an 'entered' column");
    cmd->add_option("--entry", o->entry, "Stage where new deals enter (default: the model's arrival stage, else the first)");
    cmd->add_option("--elapsed", o->elapsed, "Time already gone in the current period")->capture_default_str();
    cmd->add_option("--won", o->won, "Value already won in the current period (won_to_date)")->capture_default_str();
    cmd->add_option("--quantile", o->quantile, "Quantile of the time to win for lead times")->capture_default_str();
    cmd->add_option("--lever-step", o->lever_step, "Relative improvement applied to each lever (at most 0.75)")
        ->capture_default_str();
    cmd->add_flag("--json", o->json, "Print JSON");
    cmd->callback([o] { run_funnel(*o); });
}

} // namespace pipecast_cli
