// pipecast fit / kpi — learn the model from deal history, and the pipeline's health KPIs.
#include <pipecast/data/history.hpp>
#include <pipecast/estimation/estimation.hpp>
#include <pipecast/io/book_csv.hpp>
#include <pipecast/io/model_json.hpp>
#include <pipecast/kpi.hpp>

#include "cli_common.hpp"

#include <cctype>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace pipecast_cli {
namespace {

using json = json_out; // insertion-ordered keys (docs/cli.md)

// history_args, add_history_options, read_history and fit_options_of: cli_common.hpp (shared with report).

json skipped_json(const pipecast::visit_log& log) {
    json s = json::array();
    for (const auto& r : log.skipped) s.push_back({{"line", r.line}, {"reason", r.reason}});
    return s;
}

void print_fit_tables(const pipecast::history_fit& fit, bool dates, std::ostream& os) {
    // The log span as dates ("2024-01-02 .. 2025-06-30") for a dated log, else in time units.
    const double dpu = pipecast::days_per_unit(fit.time_unit);
    auto when = [&](double t) { return dates ? pipecast::format_time(t, true, dpu) : fixed(t, 1); };
    os << fit.visits << " visits of " << fit.deals << " deals, log " << when(fit.start_time) << " .. " << when(fit.end_time)
       << (dates ? "" : " (") << (dates ? std::string() : fit.time_unit) << (dates ? "" : "s)") << "; entry " << fit.entry_stage << " at "
       << fixed(fit.arrival_rate, 2) << " deals/" << fit.time_unit << "\n\n";
    table t({"stage", "visits", "exits", "censored", "dwell", "mean", "KM median", "naive mean"});
    for (const auto& s : fit.stages)
        t.add_row({s.name, std::to_string(s.visits), std::to_string(s.exits), std::to_string(s.censored),
                   s.dwell ? (s.dwell_source == "aic" ? std::string(pipecast::to_string(s.dwell->family()))
                                                      : s.dwell_source)
                           : "-",
                   s.dwell ? fixed(s.dwell->mean(), 2) : "-", fixed(s.km.median, 2), fixed(s.naive_mean, 2)});
    t.print(os);
    os << '\n';
    table tr({"from", "to", "exits", "probability", "std. error", "95% interval"});
    for (const auto& s : fit.stages) {
        for (const auto& e : s.transitions)
            tr.add_row({s.name, e.to, fixed(e.count, 0), percent(e.probability, 2), percent(e.se, 2),
                        percent(e.lower, 1) + " .. " + percent(e.upper, 1)});
    }
    tr.print(os);
    os << '\n';
    table ft({"stage", "family", "status", "log L", "AIC", "mean", "± se", "parameters"});
    for (const auto& s : fit.stages) {
        for (std::size_t k = 0; k < s.fits.size(); ++k) {
            const auto& f = s.fits[k];
            std::string params;
            for (const auto& p : f.parameters)
                params += (params.empty() ? "" : ", ") + p.name + " " + fixed(p.value, 3) + " ± " + fixed(p.se, 3);
            ft.add_row({k == 0 ? s.name : "", std::string(pipecast::to_string(f.family)) + (s.best == k ? " *" : ""),
                        std::string(pipecast::to_string(f.status)), fixed(f.log_likelihood, 1), fixed(f.aic, 1),
                        fixed(f.mean, 2), fixed(f.mean_se, 2), params});
        }
    }
    ft.print(os);
    os << "(* least AIC)\n";
    bool any_branched = false;
    for (const auto& s : fit.stages) any_branched = any_branched || s.branched.has_value();
    if (any_branched) {
        os << '\n';
        table bt({"stage", "branch to", "probability", "± se", "dwell", "mean", "± se", "AIC", "EM"});
        for (const auto& s : fit.stages) {
            if (!s.branched) continue;
            bool first = true;
            for (const auto& b : s.branched->branches) {
                bt.add_row({first ? s.name : "", b.to + (b.stalled ? " (stalled)" : ""), percent(b.probability, 2),
                            percent(b.se, 2), b.family, b.dwell ? fixed(b.dwell->mean(), 2) : "-", fixed(b.fit.mean_se, 2),
                            fixed(b.aic, 1),
                            first ? std::string(pipecast::to_string(s.branched->status)) + " (" +
                                        std::to_string(s.branched->iterations) + ")"
                                  : ""});
                first = false;
            }
        }
        bt.print(os);
    }
    os << '\n';
    if (fit.deal_size)
        os << "deal size: " << (fit.deal_size->is_empirical() ? "empirical, " : "lognormal, ") << fit.deal_size_count
           << " deals, mean " << money(fit.deal_size->mean()) << ", median " << money(fit.deal_size->median()) << '\n';
    if (fit.overdispersion)
        os << "overdispersion: sigma " << fixed(fit.overdispersion->sigma, 3) << " (logit shock per "
           << fit.overdispersion->period << " on " << fit.overdispersion->stage << "'s win share, "
           << fit.overdispersion->periods << " periods)\n";
    if (fit.arrivals.size() > 1) {
        os << "arrivals:";
        for (const auto& a : fit.arrivals) os << ' ' << a.stage << ' ' << fixed(a.rate, 2) << '/' << fit.time_unit;
        os << '\n';
    }
}

/// "model.json" + "west coast" -> "model-west_coast.json".
std::string segment_path(const std::string& out, const std::string& value) {
    std::string v;
    for (char c : value) v += std::isalnum(static_cast<unsigned char>(c)) || c == '-' ? c : '_';
    if (v.empty()) v = "blank";
    const auto dot = out.rfind('.');
    const auto slash = out.rfind('/');
    if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return out + "-" + v;
    return out.substr(0, dot) + "-" + v + out.substr(dot);
}

void run_fit(const history_args& a, const std::string& segment, const std::string& out) {
    const pipecast::visit_log log = read_history(a);
    const pipecast::fit_options fo = fit_options_of(a);
    progress_bar bar("fit"); // progress.hpp: stderr, a terminal only
    if (segment.empty()) bar.step("fitting the stages"); // one library call: the time so far
    else bar(0.0, "fitting the stages");
    const pipecast::history_fit fit = pipecast::fit_history(log, fo);
    std::vector<pipecast::segment_fit> segments;
    if (!segment.empty()) {
        bar(0.5, "fitting each " + segment); // one pass more over the log, at about the pace of the first
        segments = pipecast::fit_segments(log, segment, fo);
    }
    bar.finish();
    std::vector<std::string> written;
    if (!out.empty()) {
        pipecast::save_model(pipecast::to_model(fit, valid_utf8("fitted from " + a.history)), out);
        written.push_back(out);
        for (const auto& s : segments) {
            try {
                const std::string p = segment_path(out, s.value);
                pipecast::save_model(pipecast::to_model(s.fit, valid_utf8(segment + " = " + s.value)), p);
                written.push_back(p);
            } catch (const pipecast::model_error& e) {
                std::cerr << "pipecast: segment " << segment << " = '" << s.value << "': no model: " << e.what() << '\n';
            }
        }
    }
    if (a.json) {
        json j = pipecast::fit_document{fit, log.dates}; // results_json.hpp
        j["source"] = a.history;
        j["skipped"] = skipped_json(log);
        if (!segment.empty()) {
            j["segment_column"] = segment;
            json segs = json::array();
            for (const auto& s : segments) {
                json js = pipecast::fit_document{s.fit, log.dates};
                js["segment"] = s.value;
                segs.push_back(std::move(js));
            }
            j["segments"] = segs;
        }
        if (!written.empty()) j["written"] = written;
        print_json(j);
        return;
    }
    print_fit_tables(fit, log.dates, std::cout);
    for (const auto& s : segments) {
        std::cout << "\n=== " << segment << " = " << s.value << " ===\n";
        print_fit_tables(s.fit, log.dates, std::cout);
    }
    for (const auto& w : written) std::cout << "model written to " << w << '\n';
}

void print_kpi_tables(const pipecast::kpi_report& k, std::size_t max_stale, std::ostream& os) {
    const std::string u = k.time_unit + "s";
    table t({"stage", "visits", "to next", "next", "P(win)", "loss rate", "loss share", "mean time", "median",
             "time share"});
    for (const auto& s : k.stages)
        t.add_row({s.stage, std::to_string(s.visits), percent(s.conversion_to_next), s.next_stage,
                   percent(s.win_probability), percent(s.loss_rate), percent(s.loss_share), fixed(s.mean_time, 1),
                   fixed(s.median_time, 1), percent(s.time_share)});
    t.print(os);
    os << '\n';
    table s({"KPI", "value"});
    s.add_row({"deals (won / lost / open)", std::to_string(k.deals) + " (" + std::to_string(k.won) + " / " +
                                                std::to_string(k.lost) + " / " + std::to_string(k.open) + ")"});
    s.add_row({"win rate by count", percent(k.win_rate)});
    s.add_row({"win rate by value", k.value_win_rate_note.empty() ? percent(k.win_rate_by_value)
                                                                   : std::string("n/a (lost deals lack amounts)")});
    s.add_row({"closed-deal win rate (naive)", percent(k.closed_win_rate)});
    s.add_row({"average won deal", money(k.average_won_deal)});
    s.add_row({"sales cycle mean (" + u + ")", fixed(k.cycle.mean, 1)});
    s.add_row({"sales cycle median", fixed(k.cycle.median, 1)});
    s.add_row({"sales cycle p10 .. p90", fixed(k.cycle.p10, 1) + " .. " + fixed(k.cycle.p90, 1)});
    s.add_row({"model mean time to win", fixed(k.cycle.model_mean, 1)});
    s.add_row({"open opportunities", fixed(k.open_opportunities, 0)});
    s.add_row({"sales velocity (per " + k.time_unit + ")",
               money(k.velocity) + " = " + fixed(k.velocity_detail.open_opportunities, 0) + " x " +
                   percent(k.velocity_detail.win_rate) + " x " + money(k.velocity_detail.deal_size) + " / " +
                   fixed(k.velocity_detail.cycle_length, 1)});
    s.add_row({"bottleneck: most losses", k.bottleneck.loss_stage + " (" + percent(k.bottleneck.loss_share) + ")"});
    s.add_row({"bottleneck: most time", k.bottleneck.stall_stage + " (" + percent(k.bottleneck.time_share) + ", " +
                                            fixed(k.bottleneck.stall_ratio, 2) + "x even share)"});
    std::size_t likely = 0, older = 0;
    for (const auto& d : k.stale) likely += d.likely_stalled ? 1 : 0, older += d.older_than_wins ? 1 : 0;
    s.add_row({"stale deals", std::to_string(k.stale.size()) + " (" + std::to_string(likely) + " likely stalled, " +
                                  std::to_string(older) + " older than any won deal's stay)"});
    s.print(os);
    if (!k.value_win_rate_note.empty()) os << "note: " << k.value_win_rate_note << '\n';
    os << "Velocity = open deals x P(win | entry) x average open deal / time to close (every outcome), as in "
          "pipecast funnel.\n";
    if (k.stale.empty()) return;
    os << "Stale: P(stalled | stage, age) >= " << percent(k.stalled_threshold, 0)
       << ", or older than the stage's longest stay of a deal that went on to win.\n\n";
    table st({"deal", "stage", "age", "P(stalled)", "P(win|age)", "longest won", "x longest", "amount"});
    for (std::size_t i = 0; i < k.stale.size() && i < max_stale; ++i) {
        const auto& d = k.stale[i];
        st.add_row({d.id, d.stage, fixed(d.age, 1), percent(d.stalled_probability), percent(d.win_probability, 2),
                    std::isfinite(d.threshold) ? fixed(d.threshold, 1) : std::string("-"),
                    std::isfinite(d.ratio) ? fixed(d.ratio, 2) : std::string("-"), money(d.amount)});
    }
    st.print(os);
    if (k.stale.size() > max_stale)
        os << "(" << k.stale.size() - max_stale << " more; --json lists all)\n";
}

void run_kpi(const history_args& a, const std::string& deals, double quantile, std::size_t max_stale,
             double stalled_threshold = 0.5) {
    const pipecast::visit_log log = read_history(a);
    progress_bar bar("kpi"); // progress.hpp: stderr, a terminal only
    bar.step("fitting the stages");
    const pipecast::history_fit fit = pipecast::fit_history(log, fit_options_of(a));
    bar.step("computing the KPIs");
    pipecast::kpi_options ko;
    ko.stale_quantile = quantile;
    ko.stalled_threshold = stalled_threshold;
    std::optional<pipecast::book> open;
    if (!deals.empty()) {
        const pipecast::model m = pipecast::to_model(fit);
        pipecast::book_csv_options bo;
        bo.days_per_unit = pipecast::days_per_unit(a.time_unit);
        if (!a.as_of.empty() && log.dates) bo.as_of = a.as_of; // for a book with entry dates
        open = load_book_input(deals, m.graph, bo, history_input());
    }
    const pipecast::kpi_report k = pipecast::compute_kpis(log, fit, ko, open ? &*open : nullptr);
    bar.finish();
    if (a.json) {
        json j = k; // results_json.hpp
        j["source"] = a.history;
        j["skipped"] = skipped_json(log);
        if (!deals.empty()) j["deals_source"] = deals;
        print_json(j);
        return;
    }
    print_kpi_tables(k, max_stale, std::cout);
}

} // namespace

void add_fit_commands(CLI::App& app) {
    {
        auto a = std::make_shared<history_args>();
        auto segment = std::make_shared<std::string>();
        auto out = std::make_shared<std::string>();
        CLI::App* cmd = app.add_subcommand("fit", "Fit transitions and censoring-aware dwell distributions to deal history");
        a->model_kind = "branched";
        add_history_options(cmd, *a);
        cmd->add_option("--segment", *segment,
                        "fit each value of this column separately (owner, team, ...; size_band with --size-bands)");
        cmd->add_option("--out", *out, "write the fitted model as JSON (segments: one file each, FILE-<value>.json)");
        cmd->callback([a, segment, out] {
            run_fit(*a, segment->empty() && !a->size_bands.empty() ? std::string("size_band") : *segment, *out);
        });
    }
    {
        auto a = std::make_shared<history_args>();
        auto deals = std::make_shared<std::string>();
        auto quantile = std::make_shared<double>(0.9);
        auto max_stale = std::make_shared<std::size_t>(20);
        CLI::App* cmd = app.add_subcommand("kpi", "Pipeline KPIs from deal history: win rate, cycle, velocity, stale deals, bottlenecks");
        a->model_kind = "branched"; // as fit: stale deals from P(stalled | stage, age)
        add_history_options(cmd, *a);
        cmd->add_option("--deals", *deals, "open deals CSV (id,stage,amount,age): the open book for velocity and stale deals");
        auto stalled = std::make_shared<double>(0.5);
        cmd->add_option("--stale-quantile", *quantile,
                        "deprecated, accepted for compatibility: stale deals now come from --stalled-threshold and "
                        "the longest stay of a won deal")
            ->capture_default_str();
        cmd->add_option("--stalled-threshold", *stalled, "a deal is stale when P(stalled | stage, age) reaches this")
            ->capture_default_str();
        cmd->add_option("--max-stale", *max_stale, "stale deals listed in the table")->capture_default_str()->check(whole_number());
        cmd->callback([a, deals, quantile, max_stale, stalled] { run_kpi(*a, *deals, *quantile, *max_stale, *stalled); });
    }
}

} // namespace pipecast_cli
