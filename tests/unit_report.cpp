// Tests of report.hpp: calendar periods against hand-worked dates (fiscal years included),
// and make_report on crm4 at a past date: the open book and the value won to date against
// an independent reading of the CSV, the identities between its parts (survival + exits = 1,
// P(win | age 0) = P(win | entry), expected value = amount x P(win within)), the Monte Carlo
// mean against the renewal forecast within its standard error, and bad input.
#include <pipecast/report/report.hpp>

#include "test_support.hpp"
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

// One namespace a file: the unit tests are compiled together (tests/CMakeLists.txt).
namespace unit_report {

using namespace pipecast;
using pipecast_test::check_throws;

namespace {

const std::string crm4_history = PIPECAST_SHARED_DIR "/scenarios/crm4_history.csv";

double date(const char* iso) { return *detail::parse_iso8601(iso); }

std::string day(double t) { return format_time(t, true); }

/// The CSV's rows (deal_id,stage,entered,exited,next_stage,amount,owner), read by hand.
std::vector<std::vector<std::string>> rows_of(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    std::vector<std::vector<std::string>> rows;
    while (std::getline(in, line)) {
        std::vector<std::string> f;
        std::stringstream ss(line);
        std::string x;
        while (std::getline(ss, x, ',')) f.push_back(x);
        if (line.back() == ',') f.emplace_back();
        rows.push_back(f);
    }
    return rows;
}

} // namespace

TEST_CASE("period_of") {
    SUBCASE("a period end starts the next period (the calendar_cuts convention)") {
        const auto q = period_of(date("2025-06-30"), calendar_unit::quarter);
        CHECK(day(q.start) == "2025-06-30");
        CHECK(day(q.end) == "2025-09-30");
        CHECK(q.end - q.start == doctest::Approx(92.0));
        CHECK(q.label == "2025-07-01 to 2025-09-30");
    }
    SUBCASE("inside a period") {
        const auto q = period_of(date("2025-05-15"), calendar_unit::quarter);
        CHECK(day(q.start) == "2025-03-31");
        CHECK(day(q.end) == "2025-06-30");
        const auto m = period_of(date("2024-02-10"), calendar_unit::month);
        CHECK(day(m.start) == "2024-01-31");
        CHECK(day(m.end) == "2024-02-29");
        const auto y = period_of(date("2025-05-15"), calendar_unit::year);
        CHECK(day(y.start) == "2024-12-31");
        CHECK(day(y.end) == "2025-12-31");
        const auto h = period_of(date("2025-06-29T12:00"), calendar_unit::quarter); // the day before the end
        CHECK(day(h.end) == "2025-06-30");
    }
    SUBCASE("fiscal years") {
        const auto apr = period_of(date("2025-05-15"), calendar_unit::quarter, 4); // Apr-Jun, Jul-Sep, ...
        CHECK(day(apr.start) == "2025-03-31");
        CHECK(day(apr.end) == "2025-06-30");
        const auto feb = period_of(date("2025-05-15"), calendar_unit::quarter, 2); // Feb-Apr, May-Jul
        CHECK(day(feb.start) == "2025-04-30");
        CHECK(day(feb.end) == "2025-07-31");
        const auto jul = period_of(date("2025-05-15"), calendar_unit::year, 7); // Jul 2024 - Jun 2025
        CHECK(day(jul.start) == "2024-06-30");
        CHECK(day(jul.end) == "2025-06-30");
        const auto jan = period_of(date("2026-01-10"), calendar_unit::quarter, 11); // Nov-Jan
        CHECK(day(jan.start) == "2025-10-31");
        CHECK(day(jan.end) == "2026-01-31");
    }
    SUBCASE("bad input") {
        check_throws<argument_error>([] { (void)period_of(0.0, calendar_unit::quarter, 13); },
                                     {"--fiscal-year-start", "13"});
        check_throws<argument_error>([] { (void)period_of(std::nan(""), calendar_unit::month); }, {"as-of", "nan"});
        check_throws<argument_error>([] { (void)parse_calendar_unit("week"); }, {"--period", "'week'"});
        CHECK(parse_calendar_unit("year") == calendar_unit::year);
    }
}

namespace {

/// The report of crm4 as of 2025-05-15 and what it was made from, built once: doctest runs a
/// test case's body once per subcase, and the fit and the report are most of this file's time
/// (under ASan, a seventh of what rebuilding them for every subcase took).
struct crm4_report {
    double t = date("2025-05-15");
    visit_log known = as_of(load_visit_log(crm4_history), t).log;
    history_fit fit = fit_history(known, [] {
        fit_options fo;
        fo.kind = model_kind::branched;
        return fo;
    }());
    model m = to_model(fit);
    calendar_period q = period_of(t, calendar_unit::quarter);
    report_options o = options(t, q);
    pipeline_report r = make_report(known, fit, m, o);

    static report_options options(double t, const calendar_period& q) {
        report_options o;
        o.as_of = t;
        o.quota = 500'000.0;
        o.period_start = q.start;
        o.period_end = q.end;
        o.paths = 4000;
        // The Monte Carlo of the open book alone, deals independent: its mean is then the
        // renewal forecast's Σ amount × P(won within).
        o.arrivals = false;
        o.overdispersion = false;
        calendar_options co;
        co.unit = calendar_unit::quarter;
        co.buckets = 2;
        co.owner_quotas = {{"rep01", 50'000.0}};
        o.calendar = co;
        return o;
    }
};

const crm4_report& crm4_report_once() {
    static const crm4_report f;
    return f;
}

} // namespace

TEST_CASE("make_report on crm4 as of 2025-05-15") {
    const crm4_report& f = crm4_report_once();
    const double t = f.t;
    const visit_log& known = f.known;
    const history_fit& fit = f.fit;
    const model& m = f.m;
    const calendar_period& q = f.q;
    const report_options& o = f.o;
    const pipeline_report& r = f.r;

    SUBCASE("the open book and the value won to date, against the CSV read by hand") {
        // ISO timestamps compare as strings.
        std::size_t open = 0;
        double won = 0.0;
        for (const auto& f : rows_of(crm4_history)) {
            if (f[2] <= "2025-05-15" && (f[3].empty() || f[3] > "2025-05-15")) ++open;
            if (f[4] == "Won" && f[3] > "2025-03-31" && f[3] <= "2025-05-15") won += std::stod(f[5]);
        }
        CHECK(r.deals.size() == open);
        CHECK(r.won_to_date == doctest::Approx(won));
        CHECK(r.remaining_quota == doctest::Approx(std::max(0.0, 500'000.0 - won)));
    }
    SUBCASE("per deal") {
        for (const auto& d : r.deals) {
            CHECK(d.expected_value == doctest::Approx(d.amount * d.p_win_within));
            CHECK(d.p_win_within <= d.p_win + 1e-9);
        }
        for (std::size_t k = 1; k < r.top.size(); ++k)
            CHECK(r.deals[r.top[k - 1]].expected_value >= r.deals[r.top[k]].expected_value);
        std::size_t stale = 0;
        for (const auto& d : r.deals) stale += d.stale ? 1 : 0;
        CHECK(stale == r.kpi.stale.size());
    }
    SUBCASE("Monte Carlo mean against the renewal forecast, within 4 standard errors") {
        CHECK(std::abs(r.outcome.won_value.mean - r.in_period.expected) <=
              4.0 * r.outcome.won_value.standard_error + r.in_period.error_estimate);
        CHECK(r.outcome.sub_period_ends.back() == doctest::Approx(q.end - t));
        CHECK(r.outcome.sub_period_ends.front() == doctest::Approx(7.0));
    }
    SUBCASE("curves: survival + exits = 1; P(win | age 0) = P(win | entry)") {
        REQUIRE(r.survival.size() == m.graph.open_count());
        for (const auto& c : r.survival)
            for (std::size_t i = 0; i < c.t.size(); ++i) {
                double sum = c.survival[i];
                for (const auto& e : c.exits) sum += e.value[i];
                CHECK(sum == doctest::Approx(1.0).epsilon(1e-9));
            }
        const absorption_analysis a = analyse(m.graph);
        for (std::size_t s = 0; s < r.win_by_age.size(); ++s)
            CHECK(r.win_by_age[s].p_win.front() == doctest::Approx(a.win_probability(static_cast<Eigen::Index>(s))).epsilon(1e-6));
    }
    SUBCASE("sales progress: 13 weeks, positions chained") {
        REQUIRE(r.progress.size() == 13);
        CHECK(r.progress.back().end == doctest::Approx(t));
        for (std::size_t k = 1; k < r.progress.size(); ++k)
            CHECK(r.progress[k].progress.last_week ==
                  doctest::Approx(r.progress[k - 1].forecast + r.progress[k - 1].closed_won));
        CHECK(r.progress.front().progress.steady_share == doctest::Approx(7.0 / (q.end - q.start)));
    }
    SUBCASE("calendar buckets: the current quarter is the report's period") {
        REQUIRE(r.calendar);
        const auto& c = *r.calendar;
        REQUIRE(c.buckets.size() == 2);
        CHECK(c.buckets[0].period.end == q.end);
        CHECK(c.buckets[0].closed == doctest::Approx(r.won_to_date));
        CHECK(c.buckets[1].closed == 0.0);
        // Closed by owner against the CSV read by hand (owner is the 7th column; CRLF lines).
        double rep01 = 0.0;
        for (const auto& f : rows_of(crm4_history))
            if (f[4] == "Won" && f[3] > "2025-03-31" && f[3] <= "2025-05-15" && f.size() > 6 && (f[6] == "rep01" || f[6] == "rep01\r")) rep01 += std::stod(f[5]);
        REQUIRE_FALSE(c.buckets[0].owners.empty());
        CHECK(c.buckets[0].owners[0].owner == "rep01");
        CHECK(c.buckets[0].owners[0].closed == doctest::Approx(rep01));
        CHECK(c.buckets[0].owners[0].attainment == doctest::Approx(rep01 / 50'000.0));
        // The first bucket's expected value is the report's in-period forecast (another renewal
        // grid: within the interpolation error estimates and 0.5%).
        CHECK(std::abs(c.buckets[0].expected - r.in_period.expected) <= 2.0 * r.in_period.error_estimate + 0.005 * r.in_period.expected);
        for (const auto& bk : c.buckets) {
            double sum = 0.0;
            for (const auto& x : bk.owners) sum += x.expected;
            CHECK(sum == doctest::Approx(bk.expected));
            REQUIRE(bk.simulated);
            CHECK(std::abs(bk.simulated->mean - bk.expected) <= 4.0 * bk.simulated->standard_error + 0.005 * bk.expected);
        }
    }
    SUBCASE("bad input") {
        report_options bad = o;
        bad.quota = 0.0;
        check_throws<argument_error>([&] { (void)make_report(known, fit, m, bad); }, {"--quota", "0"});
        bad = o;
        bad.period_end = t;
        check_throws<argument_error>([&] { (void)make_report(known, fit, m, bad); }, {"does not contain the as-of"});
    }
}

} // namespace unit_report
