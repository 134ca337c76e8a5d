// Tests of backtest.hpp: the cuts, the actuals against an independent reading of the CSV,
// the errors and baselines, the Monte Carlo of the landmark method, bad input; and the
// crm4_messy acceptance point of the fit with the artefact options and a recency window.
#include <pipecast/estimation/backtest.hpp>
#include <pipecast/model/first_passage.hpp>

#include "test_support.hpp"
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

// One namespace a file: the unit tests are compiled together (tests/CMakeLists.txt).
namespace unit_backtest {

using namespace pipecast;
using pipecast_test::check_throws;

namespace {

const std::string crm4_history = PIPECAST_SHARED_DIR "/scenarios/crm4_history.csv";
const std::string messy_history = PIPECAST_SHARED_DIR "/scenarios/crm4_messy_history.csv";

double date(const char* iso) { return *detail::parse_iso8601(iso); }

nlohmann::json truth_of(const std::string& name) {
    std::ifstream in(PIPECAST_SHARED_DIR "/scenarios/" + name + "_truth.json");
    nlohmann::json j;
    in >> j;
    return j["truth"];
}

/// Largest |P(won within 90 | stage, age) of the model − truth| over the truth's ages 0..120.
double worst_error(const model& m, const nlohmann::json& truth) {
    const win_time_table tab = win_time_distribution(m.graph, 90.0);
    double worst = 0.0;
    for (const auto& [stage, rows] : truth.items()) {
        const std::size_t s = m.graph.index_of(stage);
        for (const auto& r : rows) {
            const double age = r["age"];
            if (age > 120) continue;
            const double p = won_within(m.graph, tab, s, age, 90.0);
            worst = std::max(worst, std::abs(p - r["won_within_90"].get<double>()));
        }
    }
    return worst;
}

/// The deals open at `cut` and the value/count won within (cut, cut + h], read from the
/// visit-log CSV with plain string handling (independent of the library's reader).
struct raw_actual {
    std::size_t open = 0, won = 0;
    double value = 0.0;
};
raw_actual read_actual(const std::string& path, double cut, double h) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line); // deal_id,stage,entered,exited,next_stage,amount,owner
    struct row {
        double entered, exited;
        std::string next;
        double amount;
    };
    std::map<std::string, std::vector<row>> deals;
    while (std::getline(in, line)) {
        std::vector<std::string> f;
        std::stringstream ss(line);
        std::string x;
        while (std::getline(ss, x, ',')) f.push_back(x);
        f.resize(7);
        deals[f[0]].push_back({*detail::parse_iso8601(f[2]), f[3].empty() ? INFINITY : *detail::parse_iso8601(f[3]), f[4],
                               std::stod(f[5])});
    }
    raw_actual r;
    for (const auto& [id, rows] : deals) {
        const row* open = nullptr;
        for (const auto& v : rows)
            if (v.entered <= cut && v.exited > cut) open = &v;
        if (!open) continue;
        ++r.open;
        const row& last = rows.back();
        if (last.next == "Won" && last.exited > cut && last.exited <= cut + h) {
            ++r.won;
            r.value += open->amount;
        }
    }
    return r;
}

} // namespace

TEST_CASE("crm4_messy: artefact options and a recency window bring the fit within 0.06 of the truth") {
    // The acceptance point of issue 9. The truth is the process at the end of the log
    // (stall shares doubled from day 730). Measured: 0.027 with the options and a 365-day
    // window; 0.21 for the raw log fitted as it is (the after-the-fact bookings make
    // Negotiation look like a fast, sure win; the click-throughs hide Proposal -> Won).
    const visit_log log = load_visit_log(messy_history);
    const auto merged = merge_click_throughs(log, parse_duration("60s"));
    const auto clean = drop_after_the_fact(merged.log, parse_duration("1d"));
    CHECK(merged.merged > 50);
    CHECK(clean.deals_dropped > 400);
    fit_options o;
    o.kind = model_kind::branched;
    o.window = 365.0;
    const double with_options = worst_error(to_model(fit_history(clean.log, o)), truth_of("crm4_messy"));
    CHECK(with_options < 0.06);
    const double raw = worst_error(to_model(fit_history(log, o)), truth_of("crm4_messy"));
    MESSAGE("worst error with the artefact options " << with_options << ", without " << raw);
    CHECK(raw > 0.10);
}

TEST_CASE("scan_artefacts: crm4_messy shows both artefacts, crm4 neither") {
    // What `fit` and `backtest` do by default (--min-dwell auto, --drop-after-the-fact auto).
    const double minute = parse_duration("60s"), day = parse_duration("1d");
    const artefact_scan clean = scan_artefacts(load_visit_log(crm4_history), minute, day);
    CHECK(clean.sub_day_times);
    CHECK(clean.short_visits == 0);
    CHECK(clean.quick_wins == 0);
    CHECK_FALSE(clean.click_throughs());
    CHECK_FALSE(clean.after_the_fact());
    const visit_log log = load_visit_log(messy_history);
    const artefact_scan messy = scan_artefacts(log, minute, day);
    // The README: 5% of deals leaving Proposal click through Negotiation; ~0.5 bookings a day.
    CHECK(messy.click_throughs());
    CHECK(messy.after_the_fact());
    CHECK(messy.quick_wins > 400);
    // The default pipeline (both cleanings, no window) against the truth at the log's end.
    const auto cleaned = drop_after_the_fact(merge_click_throughs(log, minute).log, day);
    fit_options o;
    o.kind = model_kind::branched;
    const double by_default = worst_error(to_model(fit_history(cleaned.log, o)), truth_of("crm4_messy"));
    const double raw = worst_error(to_model(fit_history(log, o)), truth_of("crm4_messy"));
    MESSAGE("crm4_messy, default fit: worst error " << by_default << " with the auto cleaning, " << raw << " without");
    CHECK(by_default < 0.06); // measured 0.039 (the raw log: 0.23)
    CHECK(by_default < raw);
}

TEST_CASE("calendar cuts") {
    const visit_log log = load_visit_log(crm4_history);
    // crm4 runs from 2023-01-01 for 1,095 days: quarter ends from 2024-01-01 to 90 days
    // before 2025-12-31.
    const auto q = quarter_end_cuts(log, 90.0);
    REQUIRE(q.size() == 7);
    CHECK(q.front() == date("2024-03-31"));
    CHECK(q[3] == date("2024-12-31"));
    CHECK(q.back() == date("2025-09-30"));
    const auto m = calendar_cuts(log, 90.0, 1);
    CHECK(m.front() == date("2024-01-31"));
    CHECK(m.back() == date("2025-09-30"));
    CHECK(m.size() == 21);
    const auto y = calendar_cuts(log, 30.0, 12);
    REQUIRE(y.size() == 1);
    CHECK(y[0] == date("2024-12-31"));
    check_throws<argument_error>([&] { (void)calendar_cuts(log, 800.0, 3); }, {"no period end"});
    check_throws<argument_error>([&] { (void)calendar_cuts(log, 90.0, 5); }, {"5 months"});
    check_throws<argument_error>([&] { (void)calendar_cuts(log, 0.0, 3); }, {"horizon", "0"});
    CHECK(parse_cut("2024-06-30", log) == date("2024-06-30"));
    check_throws<argument_error>([&] { (void)parse_cut("30/06/2024", log); }, {"30/06/2024", "ISO-8601"});
}

TEST_CASE("backtest on crm4: two cuts") {
    const visit_log log = load_visit_log(crm4_history);
    backtest_options o;
    o.cuts = {date("2024-06-30"), date("2025-03-31")};
    o.horizon = 90;
    o.fit.kind = model_kind::branched;
    o.paths = 1000;
    const backtest_result r = backtest(log, o);
    REQUIRE(r.cuts.size() == 2);
    for (const auto& c : r.cuts) {
        const raw_actual raw = read_actual(crm4_history, c.cut, 90.0);
        CHECK(c.deals == raw.open);
        CHECK(c.skipped_deals == 0);
        CHECK(c.actual_count == raw.won);
        CHECK(c.actual == doctest::Approx(raw.value));
        CHECK(c.predicted.p10 <= c.predicted.mean);
        CHECK(c.predicted.mean <= c.predicted.p90);
        CHECK(c.predicted_count.p10 <= c.predicted_count.p90);
        CHECK(c.expected > 0.0); // the exact Σ amount × p (the simulated mean moves with the shock)
        CHECK(c.crm_weighted > c.expected); // eventual wins exceed wins within 90 days
        CHECK(std::isfinite(c.roll_rate));
        CHECK(c.error == doctest::Approx(c.predicted.mean - c.actual));
        CHECK(c.overdispersion > 0.0);
    }
    // Summary figures from the cuts.
    double mape = 0.0;
    for (const auto& c : r.cuts) mape += std::abs(c.predicted.mean - c.actual) / c.actual / 2.0;
    CHECK(r.summary.mape == doctest::Approx(mape));
    double crm = 0.0;
    for (const auto& c : r.cuts) crm += std::abs(c.crm_weighted - c.actual) / c.actual / 2.0;
    CHECK(r.crm_weighted.mape == doctest::Approx(crm));
    std::size_t binned = 0;
    for (const auto& b : r.summary.calibration) binned += b.deals;
    CHECK(binned == r.cuts[0].deals + r.cuts[1].deals);
    CHECK(r.summary.brier > 0.0);
    CHECK(r.summary.brier < r.crm_weighted.brier);

    SUBCASE("the JSON interface") {
        const nlohmann::json j = r;
        for (const char* k : {"cut", "predicted", "actual", "predicted_count", "actual_count"}) CHECK(j["cuts"][0].contains(k));
        for (const char* k : {"mean", "p10", "p90"}) {
            CHECK(j["cuts"][0]["predicted"][k].is_number());
            CHECK(j["cuts"][0]["predicted_count"][k].is_number());
        }
        CHECK(j["cuts"][0]["cut"] == "2024-06-30");
        for (const char* k : {"mape", "coverage", "brier"}) CHECK(j["summary"][k].is_number());
        CHECK(j["baselines"]["crm_weighted"]["mape"].is_number());
        CHECK(j["baselines"]["roll_rate"]["mape"].is_number());
        CHECK(j["method"] == "model");
    }
    SUBCASE("the landmark method forecasts the same book") {
        backtest_options l = o;
        l.method = backtest_method::landmark;
        const backtest_result rl = backtest(log, l);
        for (std::size_t c = 0; c < 2; ++c) {
            CHECK(rl.cuts[c].deals == r.cuts[c].deals);
            CHECK(rl.cuts[c].actual == r.cuts[c].actual);
            CHECK(rl.cuts[c].predicted.p10 <= rl.cuts[c].predicted.p90);
        }
    }
}

/// The generator's P(won within 90 | stage, age) of crm4_truth.json, linear between its ages
/// (every 5 days to 365; the last row beyond).
double truth_within_90(const nlohmann::json& truth, const std::string& stage, double age) {
    const auto& rows = truth.at(stage);
    for (std::size_t i = 0; i + 1 < rows.size(); ++i) {
        const double a0 = rows[i]["age"], a1 = rows[i + 1]["age"];
        if (age < a1) {
            const double w = (age - a0) / (a1 - a0);
            return (1.0 - w) * rows[i]["won_within_90"].get<double>() + w * rows[i + 1]["won_within_90"].get<double>();
        }
    }
    return rows.back()["won_within_90"];
}

TEST_CASE("backtest on crm4: per-deal predictions follow the generator's truth") {
    // Issue 9's calibration point compares predictions with outcomes, which carry the noise of
    // a few hundred deals and of crm4's quarterly market shocks. This test compares the model
    // method's per-deal P(won within 90 | stage, age) at every quarterly cut with the truth of
    // the process that generated the log (crm4_truth.json, interpolated here), deal by deal.
    const visit_log log = load_visit_log(crm4_history);
    const nlohmann::json truth = truth_of("crm4");
    backtest_options o;
    o.cuts = quarter_end_cuts(log, 90.0);
    o.horizon = 90;
    o.fit.kind = model_kind::branched;
    o.paths = 200; // the simulated intervals are not looked at
    o.per_deal = true;
    o.nowcast = false; // the truth table is shock-averaged: compare the marginal forecast with it
    const backtest_result r = backtest(log, o);
    REQUIRE(r.cuts.size() == 7);
    double abs_diff = 0.0, n = 0.0;
    std::vector<double> p, t;
    std::vector<char> y;
    for (const auto& c : r.cuts) {
        REQUIRE(c.per_deal.size() == c.deals);
        double sp = 0.0, st = 0.0, won = 0.0;
        for (const auto& d : c.per_deal) {
            const double tp = truth_within_90(truth, d.stage, d.age);
            abs_diff += std::abs(d.p_win_within - tp);
            n += 1.0;
            sp += d.p_win_within;
            st += tp;
            won += d.won ? 1.0 : 0.0;
            p.push_back(d.p_win_within);
            t.push_back(tp);
            y.push_back(d.won ? 1 : 0);
        }
        INFO("cut ", format_time(c.cut, true), ": model ", sp, " truth ", st, " won ", won);
        CHECK(won == static_cast<double>(c.actual_count));
        // Expected wins of the book: the model's and the truth's within 5 (of 35 to 65; 3.7
        // at the first cut, fitted from one year of history).
        CHECK(std::abs(sp - st) < 5.0);
    }
    INFO("mean |p - truth| = ", abs_diff / n);
    CHECK(abs_diff / n < 0.005); // 0.0023 measured
    // The calibration tables of the model's and the truth's probabilities on the same deals
    // and outcomes: the bins the acceptance point looks at (200+ deals) differ by little, so
    // a gap there is the realisation's, not the model's.
    const auto model_bins = detail::calibration_deciles(p, y), truth_bins = detail::calibration_deciles(t, y);
    for (std::size_t b = 0; b < model_bins.size(); ++b) {
        INFO("decile ", b + 1, ": model ", model_bins[b].mean_predicted, " / ", model_bins[b].observed, ", truth ",
             truth_bins[b].mean_predicted, " / ", truth_bins[b].observed, ", se ", model_bins[b].standard_error);
        CHECK(std::abs(model_bins[b].mean_predicted - truth_bins[b].mean_predicted) < 0.01);
        CHECK(std::abs(model_bins[b].observed - model_bins[b].mean_predicted) < 3.0 * model_bins[b].standard_error + 1e-9);
    }
    // The ten fixed probability bins, deals binned by the model's prediction: in each bin with
    // 200+ deals the truth's mean probability of the same deals is the model's within 0.01, so
    // what separates either from the observed share there is the outcomes, not the fit. (In the
    // 0.3-0.4 bin, 240 deals, nearly all Proposal: model 0.357, truth 0.353, observed 0.408:
    // their wins depend on the Negotiation shock of the quarter after the cut, which no
    // forecast made at the cut can know.)
    std::array<double, 10> sp{}, st{}, sy{}, k{};
    for (std::size_t i = 0; i < p.size(); ++i) {
        const auto b = std::min<std::size_t>(9, static_cast<std::size_t>(p[i] * 10.0)); // calibration_table's bins
        sp[b] += p[i];
        st[b] += t[i];
        sy[b] += y[i];
        k[b] += 1.0;
    }
    for (std::size_t b = 0; b < 10; ++b) {
        if (k[b] < 200.0) continue;
        INFO("bin ", b, ": ", k[b], " deals, model ", sp[b] / k[b], ", truth ", st[b] / k[b], ", observed ", sy[b] / k[b]);
        CHECK(std::abs(sp[b] - st[b]) / k[b] < 0.01);
    }
}

TEST_CASE("backtest on crm4: the nowcast of the quarter's shock moves Negotiation's informed deals") {
    // crm4 shocks the won/lost split of Negotiation by the quarter a deal entered it (σ 0.35);
    // at a quarter end the quarter's cohort has partly decided. The nowcast (nowcast.hpp) reads
    // its shock from those outcomes: it moves mostly Negotiation deals, the expected value
    // and the simulated mean move together, and over the seven cuts the per-deal Brier score
    // improves (measured 0.05433 -> 0.05410) and the top decile of risk gets closer to its
    // observed share (0.051 -> 0.040).
    const visit_log log = load_visit_log(crm4_history);
    backtest_options o;
    o.cuts = quarter_end_cuts(log, 90.0);
    o.horizon = 90;
    o.fit.kind = model_kind::branched;
    o.paths = 200;
    o.per_deal = true;
    o.nowcast = false;
    const backtest_result off = backtest(log, o);
    o.nowcast = true;
    const backtest_result on = backtest(log, o);
    REQUIRE(on.cuts.size() == off.cuts.size());
    std::size_t moved = 0;
    double shift_negotiation = 0.0, shift_other = 0.0, n_negotiation = 0.0, n_other = 0.0;
    for (std::size_t c = 0; c < on.cuts.size(); ++c) {
        const auto& a = off.cuts[c];
        const auto& b = on.cuts[c];
        REQUIRE(a.per_deal.size() == b.per_deal.size());
        double sum = 0.0;
        for (std::size_t i = 0; i < a.per_deal.size(); ++i) {
            const double d = std::abs(a.per_deal[i].p_win_within - b.per_deal[i].p_win_within);
            const bool neg = a.per_deal[i].stage == "Negotiation";
            (neg ? shift_negotiation : shift_other) += d;
            (neg ? n_negotiation : n_other) += 1.0;
            moved += d > 0.0 ? 1 : 0;
            sum += b.per_deal[i].amount * b.per_deal[i].p_win_within;
        }
        CHECK(b.expected == doctest::Approx(sum).epsilon(1e-12));
        // the same simulation, shifted by the change of the expected value
        CHECK(b.predicted.mean - a.predicted.mean == doctest::Approx(b.expected - a.expected).epsilon(1e-9));
        CHECK(b.predicted.p90 - b.predicted.p10 == doctest::Approx(a.predicted.p90 - a.predicted.p10).epsilon(1e-12));
    }
    CHECK(moved > 100);
    // the other stages' refitted σ is near 0 (their decisions are not shocked): they move little
    MESSAGE("mean |shift| Negotiation ", shift_negotiation / n_negotiation, ", other stages ", shift_other / n_other);
    CHECK(shift_negotiation / n_negotiation > 5.0 * shift_other / n_other);
    CHECK(on.summary.brier < off.summary.brier);
    const auto& top_on = on.summary.calibration_deciles.back();
    const auto& top_off = off.summary.calibration_deciles.back();
    CHECK(std::abs(top_on.observed - top_on.mean_predicted) < std::abs(top_off.observed - top_off.mean_predicted));
}

TEST_CASE("calibration by deciles of risk") {
    // 25 pairs in a shuffled order: p_i = i/25, won when i % 3 == 0. Deciles of 25 pairs are
    // groups of 2 or 3 consecutive ranks: floor(25·g/10) .. floor(25·(g+1)/10).
    std::vector<double> p;
    std::vector<char> y;
    for (int k = 0; k < 25; ++k) {
        const int i = (k * 7) % 25; // a permutation of 0..24
        p.push_back(i / 25.0);
        y.push_back(i % 3 == 0 ? 1 : 0);
    }
    const auto bins = detail::calibration_deciles(p, y);
    REQUIRE(bins.size() == 10);
    std::size_t total = 0;
    for (int g = 0; g < 10; ++g) {
        const int i0 = 25 * g / 10, i1 = 25 * (g + 1) / 10;
        double sp = 0.0, sy = 0.0, var = 0.0;
        for (int i = i0; i < i1; ++i) {
            sp += i / 25.0;
            sy += i % 3 == 0 ? 1.0 : 0.0;
            var += (i / 25.0) * (1.0 - i / 25.0);
        }
        CHECK(bins[g].deals == static_cast<std::size_t>(i1 - i0));
        CHECK(bins[g].standard_error == doctest::Approx(std::sqrt(var) / (i1 - i0)));
        CHECK(bins[g].lower == doctest::Approx(i0 / 25.0));
        CHECK(bins[g].upper == doctest::Approx((i1 - 1) / 25.0));
        CHECK(bins[g].mean_predicted == doctest::Approx(sp / (i1 - i0)));
        CHECK(bins[g].observed == doctest::Approx(sy / (i1 - i0)));
        total += bins[g].deals;
    }
    CHECK(total == 25);
    CHECK(detail::calibration_deciles({0.5, 0.25}, {1, 0}).size() == 2); // fewer pairs than ten: one a group
    CHECK(detail::calibration_deciles({}, {}).empty());
}

TEST_CASE("bernoulli paths of the landmark method") {
    const std::vector<double> p = {0.1, 0.5, 0.9, 0.0, 0.3};
    const std::vector<double> a = {100, 200, 50, 1000, 10};
    std::vector<double> value, count;
    const std::size_t n = 20000;
    detail::bernoulli_paths(p, a, 0.0, n, 7, 0, value, count);
    double mv = 0.0, mc = 0.0;
    for (std::size_t k = 0; k < n; ++k) {
        mv += value[k] / n;
        mc += count[k] / n;
    }
    double ev = 0.0, var = 0.0, ec = 0.0, varc = 0.0;
    for (std::size_t i = 0; i < p.size(); ++i) {
        ev += a[i] * p[i];
        var += a[i] * a[i] * p[i] * (1 - p[i]);
        ec += p[i];
        varc += p[i] * (1 - p[i]);
    }
    CHECK(std::abs(mv - ev) < 4.0 * std::sqrt(var / n));
    CHECK(std::abs(mc - ec) < 4.0 * std::sqrt(varc / n));
    // A shock widens the count's spread beyond independent deals.
    std::vector<double> v2, c2;
    detail::bernoulli_paths(p, a, 1.0, n, 7, 0, v2, c2);
    double s2 = 0.0, m2 = 0.0;
    for (double c : c2) m2 += c / n;
    for (double c : c2) s2 += (c - m2) * (c - m2) / (n - 1);
    CHECK(s2 > 1.2 * varc);
    // Reproducible.
    std::vector<double> v3, c3;
    detail::bernoulli_paths(p, a, 1.0, n, 7, 0, v3, c3);
    CHECK(v3 == v2);
}

TEST_CASE("backtest: bad input") {
    const visit_log log = load_visit_log(crm4_history);
    backtest_options o;
    o.horizon = 90;
    o.cuts = {date("2022-06-30")};
    check_throws<argument_error>([&] { (void)backtest(log, o); }, {"cut 2022-06-30", "outside the log", "crm4_history.csv"});
    o.cuts = {date("2025-12-01")};
    check_throws<argument_error>([&] { (void)backtest(log, o); }, {"cut 2025-12-01", "runs past the end"});
    o.cuts = {date("2024-06-30")};
    o.horizon = 0;
    check_throws<argument_error>([&] { (void)backtest(log, o); }, {"horizon", "0"});
    o.horizon = 90;
    o.cuts.clear();
    check_throws<argument_error>([&] { (void)backtest(log, o); }, {"no cuts"});
    o.cuts = {date("2023-01-01T12:00")}; // six hours in: no visit has ended, nothing to fit
    o.fit.kind = model_kind::branched;
    bool named = false;
    try {
        (void)backtest(log, o);
    } catch (const error& e) {
        INFO(e.what());
        named = std::string(e.what()).find("cut 2023-01-01T12:00") != std::string::npos;
    }
    CHECK(named);
}

} // namespace unit_backtest
