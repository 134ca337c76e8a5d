// Tests of calendar.hpp: calendar buckets against hand-worked dates, forecast categories,
// the owner-quota reader and its errors, and calendar_forecast on one-stage models whose
// P(won within t | age) has a closed form: exponential dwell (p (1 − e^{−t/μ})) and gamma
// shape 2 (p (1 − S(a + t) / S(a)), S(t) = (1 + t/θ) e^{−t/θ}). The bucket values are checked
// against the closed form differenced by hand at the bucket ends, the roll-up and owner
// lines against sums by hand, and the simulated bucket means against the closed form within
// 5 standard errors (fixed seed).
#include <pipecast/forecast/calendar.hpp>

#include "test_support.hpp"
#include <doctest/doctest.h>

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

// One namespace a file: the unit tests are compiled together (tests/CMakeLists.txt).
namespace unit_calendar {

using namespace pipecast;
using pipecast_test::check_throws;

namespace {

double date(const char* iso) { return *detail::parse_iso8601(iso); }
std::string day(double t) { return format_time(t, true); }

/// One open stage S with the given dwell; S -> Won with probability p, else Lost.
model one_stage(dwell_distribution dwell, double p) {
    Eigen::MatrixXd t(1, 3);
    t << 0.0, p, 1.0 - p;
    return model{.graph = stage_graph({{"S", std::move(dwell)}}, {{"Won", true}, {"Lost", false}}, t),
                 .deal_size = {}, .arrivals = {}, .name = "one stage", .description = {}, .currency = {}};
}

struct row {
    const char* id;
    double amount, age;
    const char* owner;
    const char* category;
};

book book_of(const model& m, const std::vector<row>& rows) {
    book b(m.graph);
    for (const auto& r : rows) b.add(r.id, 0, r.amount, r.age, std::nullopt, r.owner, r.category);
    return b;
}

const std::vector<row> deals = {{"a", 1000.0, 0.0, "ann", "commit"},   {"b", 2000.0, 5.0, "bob", "best case"},
                                {"c", 500.0, 40.0, "ann", "pipeline"}, {"d", 3000.0, 10.0, "bob", "Commit"},
                                {"e", 800.0, 2.0, "cy", "omitted"},    {"f", 1200.0, 0.0, "cy", ""}};

} // namespace

TEST_CASE("calendar_buckets") {
    const auto q = calendar_buckets(date("2025-05-15"), calendar_unit::quarter, 3);
    REQUIRE(q.size() == 3);
    CHECK(day(q[0].start) == "2025-03-31");
    CHECK(day(q[0].end) == "2025-06-30");
    CHECK(day(q[1].end) == "2025-09-30");
    CHECK(day(q[2].start) == "2025-09-30");
    CHECK(day(q[2].end) == "2025-12-31");
    CHECK(q[2].label == "2025-10-01 to 2025-12-31");
    const auto m = calendar_buckets(date("2024-01-31"), calendar_unit::month, 2); // a month end starts the next
    CHECK(day(m[0].end) == "2024-02-29");
    CHECK(day(m[1].end) == "2024-03-31");
    const auto y = calendar_buckets(date("2025-05-15"), calendar_unit::year, 2, 4); // fiscal years from April
    CHECK(day(y[0].start) == "2025-03-31");
    CHECK(day(y[0].end) == "2026-03-31");
    CHECK(day(y[1].end) == "2027-03-31");
    check_throws<argument_error>([] { (void)calendar_buckets(0.0, calendar_unit::month, 0); }, {"--buckets", "0"});
    check_throws<argument_error>([] { (void)calendar_buckets(0.0, calendar_unit::month, 121); }, {"--buckets", "121"});
    CHECK(to_string(calendar_unit::quarter) == "quarter");
}

TEST_CASE("category_of") {
    CHECK(category_of("Commit") == forecast_category::commit);
    CHECK(category_of("best case") == forecast_category::best_case);
    CHECK(category_of("Best_Case") == forecast_category::best_case);
    CHECK(category_of("BestCase") == forecast_category::best_case);
    CHECK(category_of("Closed") == forecast_category::closed);
    CHECK(category_of("Omitted") == forecast_category::omitted);
    CHECK(category_of("Pipeline") == forecast_category::pipeline);
    CHECK(category_of("") == forecast_category::pipeline);
    CHECK(category_of("stretch") == forecast_category::pipeline);
}

TEST_CASE("read_owner_quotas") {
    {
        std::istringstream in("region,Owner,Quota\nwest,ann,100000\neast,\"bob\",250000.5\n");
        const auto q = read_owner_quotas(in, "q.csv");
        REQUIRE(q.size() == 2);
        CHECK(q[0].owner == "ann");
        CHECK(q[0].quota == 100000.0);
        CHECK(q[1].owner == "bob");
        CHECK(q[1].quota == 250000.5);
    }
    auto bad = [](const char* text, const char* where, const char* what) {
        check_throws<parse_error>([&] {
            std::istringstream in(text);
            (void)read_owner_quotas(in, "q.csv");
        }, {where, what});
    };
    bad("owner,target\nann,1\n", "q.csv:1", "missing column 'quota'");
    bad("name,quota\nann,1\n", "q.csv:1", "missing column 'owner'");
    bad("owner,quota\nann,1\nbob,lots\n", "q.csv:3", "lots");
    bad("owner,quota\nann,1\nbob,-5\n", "q.csv:3", "-5");
    bad("owner,quota\nann,1\n ,5\n", "q.csv:3", "empty owner");
    bad("owner,quota\nann,1\nann,2\n", "q.csv:3", "'ann' listed twice");
    bad("owner,quota\nann\n", "q.csv:2", "fields");
    bad("", "q.csv", "empty file");
    check_throws<argument_error>([] { (void)load_owner_quotas("/nonexistent/q.csv"); }, {"--quotas", "/nonexistent/q.csv"});
}

TEST_CASE("calendar_forecast: exponential stage, bucket values against the closed form") {
    const double mu = 30.0, p = 0.4;
    const model m = one_stage(dwell_distribution::exponential(mu), p);
    const book b = book_of(m, deals);
    calendar_options o;
    o.as_of = date("2025-05-15");
    o.unit = calendar_unit::month;
    o.buckets = 3;
    o.closed.total = 700.0;
    o.closed.by_owner = {{"ann", 300.0}, {"dee", 400.0}};
    o.owner_quotas = {{"bob", 5000.0}, {"ann", 2000.0}};
    o.simulation.paths = 20000;
    o.simulation.seed = 7;
    o.simulation.threads = 1;
    const calendar_forecast_result r = calendar_forecast(m, b, o);
    REQUIRE(r.buckets.size() == 3);
    // Bucket offsets from the as-of date by hand: May 15 -> May 31 (16 days), Jun 30 (46), Jul 31 (77).
    const double ends[] = {16.0, 46.0, 77.0};
    const double starts[] = {0.0, 16.0, 46.0};
    double total_amount = 0.0, commit_amount = 0.0, best_amount = 0.0, pipe_amount = 0.0;
    for (const auto& d : deals) {
        total_amount += d.amount;
        const std::string c = d.category;
        if (c == "commit" || c == "Commit") commit_amount += d.amount;
        else if (c == "best case") best_amount += d.amount;
        else if (c != "omitted") pipe_amount += d.amount;
    }
    for (std::size_t k = 0; k < 3; ++k) {
        const auto& x = r.buckets[k];
        CHECK(x.from == doctest::Approx(starts[k]));
        CHECK(x.to == doctest::Approx(ends[k]));
        const double share = p * (std::exp(-starts[k] / mu) - std::exp(-ends[k] / mu)); // memoryless: age irrelevant
        CHECK(x.expected == doctest::Approx(total_amount * share).epsilon(1e-9));
        const double closed = k == 0 ? 700.0 : 0.0;
        CHECK(x.closed == closed);
        CHECK(x.rollup.closed == closed);
        CHECK(x.rollup.commit == doctest::Approx(closed + commit_amount * share).epsilon(1e-9));
        CHECK(x.rollup.best_case == doctest::Approx(closed + (commit_amount + best_amount) * share).epsilon(1e-9));
        CHECK(x.rollup.pipeline == doctest::Approx(closed + (commit_amount + best_amount + pipe_amount) * share).epsilon(1e-9));
        CHECK(x.quota == 7000.0);
        // Owners: the quota file's order, then the book's, then owners with wins only.
        REQUIRE(x.owners.size() == 4);
        CHECK(x.owners[0].owner == "bob");
        CHECK(x.owners[1].owner == "ann");
        CHECK(x.owners[2].owner == "cy");
        CHECK(x.owners[3].owner == "dee");
        CHECK(x.owners[0].expected == doctest::Approx(5000.0 * share).epsilon(1e-9));
        CHECK(x.owners[0].deals == 2);
        CHECK(x.owners[0].projected_attainment == doctest::Approx(5000.0 * share / 5000.0).epsilon(1e-9));
        CHECK(x.owners[1].closed == (k == 0 ? 300.0 : 0.0));
        CHECK(x.owners[1].attainment == doctest::Approx((k == 0 ? 300.0 : 0.0) / 2000.0));
        CHECK(x.owners[1].projected_attainment == doctest::Approx(((k == 0 ? 300.0 : 0.0) + 1500.0 * share) / 2000.0).epsilon(1e-9));
        CHECK(x.owners[1].rollup.commit == doctest::Approx((k == 0 ? 300.0 : 0.0) + 1000.0 * share).epsilon(1e-9));
        CHECK(std::isnan(x.owners[2].quota));
        CHECK(x.owners[3].deals == 0);
        // Simulated value in the bucket (no arrivals): its mean within 5 standard errors of the closed form.
        REQUIRE(x.simulated);
        CHECK(std::abs(x.simulated->mean - total_amount * share) < 5.0 * x.simulated->standard_error + 1e-9);
        CHECK(x.simulated->quantiles[0] <= x.simulated->quantiles[2]);
        REQUIRE(x.simulated->p_quota.size() == 1);
    }
    // The buckets' simulated values add up, path by path, to the run's won value.
    double sum = 0.0;
    for (const auto& x : r.buckets) sum += x.simulated->mean;
    CHECK(sum == doctest::Approx(r.simulation->won_value.mean).epsilon(1e-9));
    // Per-deal P(won by the end of the last bucket) against the closed form.
    for (std::size_t i = 0; i < b.size(); ++i) CHECK(r.deal_won_by[2][i] == doctest::Approx(p * (1.0 - std::exp(-77.0 / mu))));
}

TEST_CASE("calendar_forecast: gamma stage (renewal table), aged deals against the closed form") {
    const double theta = 10.0, p = 0.5; // gamma shape 2, mean 20
    const model m = one_stage(dwell_distribution::gamma(2.0, 20.0), p);
    const book b = book_of(m, {{"young", 1000.0, 0.0, "", ""}, {"old", 1000.0, 30.0, "", ""}, {"mid", 4000.0, 8.0, "", ""}});
    calendar_options o;
    o.as_of = date("2025-06-30"); // a quarter end: the next quarter starts the buckets
    o.unit = calendar_unit::quarter;
    o.buckets = 2;
    o.simulate = false;
    const calendar_forecast_result r = calendar_forecast(m, b, o);
    REQUIRE(r.buckets.size() == 2);
    CHECK(r.buckets[0].from == 0.0);
    CHECK(r.buckets[0].to == doctest::Approx(92.0));
    CHECK(r.buckets[1].to == doctest::Approx(184.0));
    CHECK_FALSE(r.buckets[0].simulated);
    CHECK(r.buckets[0].owners.empty());
    auto S = [&](double t) { return (1.0 + t / theta) * std::exp(-t / theta); };
    auto won_by = [&](double a, double t) { return p * (1.0 - S(a + t) / S(a)); };
    for (std::size_t k = 0; k < 2; ++k) {
        double want = 0.0;
        const double from = r.buckets[k].from, to = r.buckets[k].to;
        want += 1000.0 * (won_by(0.0, to) - won_by(0.0, from));
        want += 1000.0 * (won_by(30.0, to) - won_by(30.0, from));
        want += 4000.0 * (won_by(8.0, to) - won_by(8.0, from));
        CHECK(r.buckets[k].expected == doctest::Approx(want).epsilon(2e-3));
        CHECK(r.buckets[k].rollup.pipeline == doctest::Approx(r.buckets[k].expected)); // uncategorised: pipeline
    }
    check_throws<argument_error>([&] {
        calendar_options bad = o;
        bad.quota = -1.0;
        (void)calendar_forecast(m, b, bad);
    }, {"quota", "-1"});
}

TEST_CASE("per_deal_csv") {
    const model m = one_stage(dwell_distribution::exponential(10.0), 0.5);
    const book b = book_of(m, {{"x,1", 100.0, 2.0, "ann", ""}, {"y", 50.0, 0.5, "", ""}});
    const std::vector<double> pw{0.5, 0.5}, within{0.25, 0.125}, close{3.0, std::nan("")};
    const std::vector<char> stale{0, 1};
    const auto rows = deal_forecasts(m.graph, b, date("2025-01-01"), pw, within, close, stale);
    REQUIRE(rows.size() == 2);
    CHECK(rows[0].expected_value == 25.0);
    CHECK(day(rows[0].expected_close) == "2025-01-04");
    CHECK(std::isnan(rows[1].expected_close));
    CHECK(per_deal_csv(rows, true) == "id,stage,age,amount,p_win,p_win_within,expected_close,stale,expected_value,owner\n"
                                      "\"x,1\",S,2,100,0.5,0.25,2025-01-04,false,25,ann\n"
                                      "y,S,0.5,50,0.5,0.125,,true,6.25,\n");
    check_throws<argument_error>([&] { (void)deal_forecasts(m.graph, b, 0.0, pw, std::vector<double>{0.1}, close, stale); },
                                 {"deal_forecasts", "2 deals"});
}

} // namespace unit_calendar
