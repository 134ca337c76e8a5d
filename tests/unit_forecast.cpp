// Tests of forecast.hpp: the weighted forecast, the period forecast and sales progress.
#include <pipecast/forecast/forecast.hpp>
#include <pipecast/io/book_csv.hpp>
#include <pipecast/io/model_json.hpp>

#include <boost/math/special_functions/gamma.hpp>
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

// One namespace a file: the unit tests are compiled together (tests/CMakeLists.txt).
namespace unit_forecast {

using namespace pipecast;

namespace {

/// Three-stage linear funnel with cumulative win rates 0.2, 0.5, 0.8 (exponential dwells).
stage_graph three_stage() { return linear_funnel({"Lead", "Demo", "Proposal"}, {0.2, 0.5, 0.8}, std::vector<double>{5, 10, 20}); }

/// A one-stage model: dwell d, then Won with probability p, else Lost.
stage_graph one_stage(dwell_distribution d, double p) {
    Eigen::MatrixXd t(1, 3);
    t << 0.0, p, 1.0 - p;
    return stage_graph({{"S", std::move(d)}}, {{"Won", true}, {"Lost", false}}, t);
}

/// Naive per-deal totals, the reference for every rollup path.
struct naive_totals {
    std::map<std::string, double> amount, weighted;
    std::map<std::string, std::size_t> count;
};
naive_totals naive(const book& b, const std::vector<double>& p, int by /*0 stage, 1 owner, 2 category*/) {
    naive_totals t;
    for (std::size_t i = 0; i < b.size(); ++i) {
        const deal d = b.at(i);
        const std::string& key = by == 0 ? d.stage : by == 1 ? d.owner : d.category;
        t.amount[key] += d.amount;
        t.weighted[key] += d.amount * p[i];
        ++t.count[key];
    }
    return t;
}

double rel(double a, double b) { return std::abs(a - b) / std::max(1.0, std::abs(b)); }

} // namespace

TEST_CASE("forecast") {
    SUBCASE("weighted forecast of a hand-computed book") {
        const auto g = three_stage();
        book b(g);
        b.add({"A", "Lead", 100.0, 0.0, "ann", "pipeline", "EUR", std::nullopt});
        b.add({"B", "Demo", 200.0, 3.0, "bob", "best case", "EUR", std::nullopt});
        b.add({"C", "Proposal", 300.0, 1.0, "ann", "commit", "EUR", 0.9});
        b.add({"D", "Proposal", 50.0, 2.0, "bob", "commit", "", std::nullopt});
        const auto f = weighted_forecast(g, b);
        // 100·0.2 + 200·0.5 + 300·0.9 (override) + 50·0.8
        CHECK(f.weighted_total == doctest::Approx(430.0).epsilon(1e-14));
        CHECK(f.total_amount == 650.0);
        CHECK(f.count == 4);
        CHECK(f.overridden == 1);
        CHECK(f.currency == "EUR");
        REQUIRE(f.by_stage.size() == 3);
        CHECK(f.by_stage[0].stage == "Lead");
        CHECK(f.by_stage[0].count == 1);
        CHECK(f.by_stage[0].win_probability == doctest::Approx(0.2).epsilon(1e-14));
        CHECK(f.by_stage[0].weighted == doctest::Approx(20.0).epsilon(1e-14));
        CHECK(f.by_stage[2].stage == "Proposal");
        CHECK(f.by_stage[2].count == 2);
        CHECK(f.by_stage[2].amount == 350.0);
        CHECK(f.by_stage[2].win_probability == doctest::Approx(0.8).epsilon(1e-14));
        CHECK(f.by_stage[2].weighted == doctest::Approx(310.0).epsilon(1e-14));
        CHECK(f.by_stage[2].overridden == 1);
        REQUIRE(f.by_owner.size() == 2);
        CHECK(f.by_owner[0].key == "ann");
        CHECK(f.by_owner[0].weighted == doctest::Approx(290.0).epsilon(1e-14));
        CHECK(f.by_owner[1].key == "bob");
        CHECK(f.by_owner[1].weighted == doctest::Approx(140.0).epsilon(1e-14));
        REQUIRE(f.by_category.size() == 3);
        CHECK(f.by_category[2].key == "commit");
        CHECK(f.by_category[2].count == 2);
        CHECK(f.by_category[2].weighted == doctest::Approx(310.0).epsilon(1e-14));
    }

    SUBCASE("overrides of 0 and 1 replace the stage probability") {
        const auto g = three_stage();
        book b(g);
        b.add("lost cause", 2, 1000.0, 0.0, 0.0);
        b.add("signed", 0, 500.0, 0.0, 1.0);
        b.add("plain", 0, 500.0, 0.0);
        const auto f = weighted_forecast(g, b);
        CHECK(f.weighted_total == doctest::Approx(500.0 + 100.0).epsilon(1e-14));
        CHECK(f.overridden == 2);
        CHECK(f.by_stage[0].overridden == 1);
        CHECK(f.by_stage[2].weighted == 0.0);
        CHECK(f.by_stage[2].win_probability == doctest::Approx(0.8)); // the model's, not the override
    }

    SUBCASE("an empty book forecasts zero and still lists every stage") {
        const auto g = three_stage();
        const book b(g);
        const auto f = weighted_forecast(g, b);
        CHECK(f.count == 0);
        CHECK(f.weighted_total == 0.0);
        CHECK(f.by_stage.size() == 3);
        CHECK(f.by_owner.empty());
        const auto q = period_forecast(g, b, 30.0);
        CHECK(q.expected == 0.0);
        CHECK(q.by_stage.size() == 3);
    }

    SUBCASE("every rollup path: lines sum to the totals and match a naive loop") {
        // 3 stages × owners × categories: ≤ 64 cells (4 lanes), ≤ 16384 (joint), > 16384 (three tables).
        const auto g = three_stage();
        const std::vector<double> w{0.2, 0.5, 0.8};
        for (const std::size_t owners : {std::size_t{2}, std::size_t{300}, std::size_t{7000}}) {
            CAPTURE(owners);
            std::mt19937_64 rng(42 + owners);
            std::uniform_int_distribution<std::size_t> stage(0, 2), owner(0, owners - 1), cat(0, 2);
            std::uniform_real_distribution<double> unit(0.0, 1.0);
            book b(g);
            std::vector<double> p;
            const char* cats[] = {"pipeline", "best case", "commit"};
            for (std::size_t i = 0; i < 30011; ++i) {
                const std::size_t s = stage(rng);
                std::optional<double> o;
                if (unit(rng) < 0.1) o = unit(rng);
                b.add(std::to_string(i), s, std::floor(1e5 * unit(rng)) / 4.0, 0.0, o, std::string("o").append(std::to_string(owner(rng))),
                      cats[cat(rng)]);
                p.push_back(o ? *o : w[s]);
            }
            const auto f = weighted_forecast(g, b);
            double total_w = 0.0, total_a = 0.0;
            for (std::size_t i = 0; i < b.size(); ++i) total_w += b.amounts()[i] * p[i], total_a += b.amounts()[i];
            CHECK(rel(f.weighted_total, total_w) < 1e-12);
            CHECK(rel(f.total_amount, total_a) < 1e-12);
            CHECK(f.count == b.size());
            const std::vector<const std::vector<group_forecast>*> groups{&f.by_owner, &f.by_category};
            for (int by = 0; by < 3; ++by) {
                const auto ref = naive(b, p, by);
                double sum_w = 0.0, sum_a = 0.0;
                std::size_t sum_n = 0, sum_o = 0;
                auto check_line = [&](const std::string& key, std::size_t count, double amount, double weighted,
                                      std::size_t overridden) {
                    CAPTURE(key);
                    CHECK(count == ref.count.at(key));
                    CHECK(rel(amount, ref.amount.at(key)) < 1e-12);
                    CHECK(rel(weighted, ref.weighted.at(key)) < 1e-12);
                    sum_w += weighted, sum_a += amount, sum_n += count, sum_o += overridden;
                };
                if (by == 0)
                    for (const auto& s : f.by_stage) check_line(s.stage, s.count, s.amount, s.weighted, s.overridden);
                else
                    for (const auto& x : *groups[static_cast<std::size_t>(by - 1)])
                        check_line(x.key, x.count, x.amount, x.weighted, x.overridden);
                CHECK(rel(sum_w, f.weighted_total) < 1e-12);
                CHECK(rel(sum_a, f.total_amount) < 1e-12);
                CHECK(sum_n == f.count);
                CHECK(sum_o == f.overridden);
            }
        }
    }

    SUBCASE("b2b6: weighted total equals Σ amount × P(win|stage) computed independently") {
        // The model and the book are read here without the library; P(win | stage) comes from
        // iterating the jump chain, distribution ← distribution · P, to convergence.
        std::ifstream jf(PIPECAST_SHARED_DIR "/scenarios/b2b6.json");
        REQUIRE(jf);
        const auto j = nlohmann::json::parse(jf);
        std::vector<std::string> names;
        for (const auto& s : j["stages"]) names.push_back(s["name"].get<std::string>());
        const std::size_t m = names.size();
        names.push_back(j["outcomes"]["won"].get<std::string>());
        names.push_back(j["outcomes"]["lost"].get<std::string>());
        std::map<std::string, std::size_t> index;
        for (std::size_t k = 0; k < names.size(); ++k) index[names[k]] = k;
        std::vector<std::vector<double>> p(names.size(), std::vector<double>(names.size(), 0.0));
        for (const auto& [from, row] : j["transitions"].items())
            for (const auto& [to, prob] : row.items()) p[index.at(from)][index.at(to)] = prob.get<double>();
        p[m][m] = p[m + 1][m + 1] = 1.0; // absorbing
        std::map<std::string, double> p_win;
        for (std::size_t s = 0; s < m; ++s) {
            std::vector<double> x(names.size(), 0.0);
            x[s] = 1.0;
            double open = 1.0;
            for (int it = 0; it < 100000 && open > 1e-16; ++it) {
                std::vector<double> y(names.size(), 0.0);
                for (std::size_t a = 0; a < names.size(); ++a)
                    for (std::size_t c = 0; c < names.size(); ++c) y[c] += x[a] * p[a][c];
                x = y;
                open = 0.0;
                for (std::size_t a = 0; a < m; ++a) open += x[a];
            }
            REQUIRE(open <= 1e-16);
            p_win[names[s]] = x[m];
        }
        std::ifstream cf(PIPECAST_SHARED_DIR "/scenarios/b2b6_open_deals.csv");
        REQUIRE(cf);
        std::string line;
        std::getline(cf, line);
        REQUIRE(line.rfind("id,stage,amount", 0) == 0);
        double expected = 0.0, amount = 0.0;
        std::size_t n = 0;
        while (std::getline(cf, line)) {
            std::stringstream ss(line);
            std::string id, stage, value;
            std::getline(ss, id, ',');
            std::getline(ss, stage, ',');
            std::getline(ss, value, ',');
            expected += std::stod(value) * p_win.at(stage);
            amount += std::stod(value);
            ++n;
        }
        REQUIRE(n == 10000);

        const auto model = load_model(PIPECAST_SHARED_DIR "/scenarios/b2b6.json");
        const auto b = load_book_csv(PIPECAST_SHARED_DIR "/scenarios/b2b6_open_deals.csv", model.graph);
        const auto f = weighted_forecast(model.graph, b);
        CHECK(f.count == n);
        CHECK(rel(f.total_amount, amount) < 1e-12);
        CHECK(rel(f.weighted_total, expected) < 1e-12);
        for (const auto& s : f.by_stage) CHECK(s.win_probability == doctest::Approx(p_win.at(s.stage)).epsilon(1e-12));
    }

    SUBCASE("precomputed-analysis overloads give the same forecast") {
        const auto model = load_model(PIPECAST_SOURCE_DIR "/examples/data/saas.json");
        const auto b = load_book_csv(PIPECAST_SOURCE_DIR "/examples/data/saas_deals.csv", model.graph);
        const auto a = analyse(model.graph);
        const auto f0 = weighted_forecast(model.graph, b);
        const auto f1 = weighted_forecast(model.graph, b, a);
        const std::vector<double> w(a.win_probability.data(), a.win_probability.data() + a.win_probability.size());
        const auto f2 = weighted_forecast(model.graph, b, std::span<const double>(w));
        CHECK(f0.weighted_total == f1.weighted_total);
        CHECK(f0.weighted_total == f2.weighted_total);
        CHECK(f0.overridden == 2);
        // A forecast with other probabilities: all 1 gives the total amount, all 0 the overrides only.
        const std::vector<double> ones(model.graph.open_count(), 1.0), zeros(model.graph.open_count(), 0.0);
        double overridden_value = 0.0;
        for (std::size_t i = 0; i < b.size(); ++i) {
            const double o = b.probability_overrides()[i];
            if (!std::isnan(o)) overridden_value += b.amounts()[i] * o;
        }
        CHECK(weighted_forecast(model.graph, b, std::span<const double>(zeros)).weighted_total ==
              doctest::Approx(overridden_value).epsilon(1e-14));
        CHECK(weighted_forecast(model.graph, b, std::span<const double>(ones)).weighted_total <= f0.total_amount);
    }

    SUBCASE("bad inputs to the weighted forecast") {
        const auto g = three_stage();
        const auto other = linear_funnel({"Lead", "Pitch", "Proposal"}, {0.2, 0.5, 0.8}, std::vector<double>{5, 10, 20});
        book b(g);
        b.add("A", 0, 100.0, 0.0);
        CHECK_THROWS_WITH_AS((void)weighted_forecast(other, b), doctest::Contains("Pitch"), argument_error);
        CHECK_THROWS_WITH_AS((void)weighted_forecast(other, b), doctest::Contains("weighted_forecast"), argument_error);
        CHECK_THROWS_WITH_AS((void)period_forecast(other, b, 10.0), doctest::Contains("period_forecast"), argument_error);
        const std::vector<double> two{0.1, 0.2}, bad{0.1, 1.5, 0.3};
        CHECK_THROWS_WITH_AS((void)weighted_forecast(g, b, std::span<const double>(two)), doctest::Contains("2 win probabilities"),
                             argument_error);
        CHECK_THROWS_WITH_AS((void)weighted_forecast(g, b, std::span<const double>(bad)), doctest::Contains("'Demo'"),
                             argument_error);
        book mixed(g);
        mixed.add("A", 0, 100.0, 0.0, std::nullopt, "", "", "EUR");
        mixed.add("B", 0, 100.0, 0.0, std::nullopt, "", "", "");
        CHECK_NOTHROW((void)weighted_forecast(g, mixed)); // a deal without currency is in the book's
        mixed.add("C", 1, 100.0, 0.0, std::nullopt, "", "", "USD");
        CHECK_THROWS_WITH_AS((void)weighted_forecast(g, mixed), doctest::Contains("'EUR' and 'USD'"), argument_error);
        CHECK_THROWS_WITH_AS((void)period_forecast(g, mixed, 5.0), doctest::Contains("mixes currencies"), argument_error);
    }

    SUBCASE("period forecast, Markov model: closed form and matrix exponential") {
        // Lead (mean 10) -> Demo with 0.5; Demo (mean 5) -> Won with 0.8.
        const auto g = linear_funnel({"Lead", "Demo"}, {0.5, 0.8}, std::vector<double>{10, 5}, funnel_rates::conversion);
        book b(g);
        b.add("x", 0, 1000.0, 3.0);
        b.add("y", 1, 2000.0, 40.0);
        b.add("z", 1, 500.0, 0.0, 0.4); // override
        const double h = 12.0, l0 = 0.1, l1 = 0.2;
        const double hypo = 1.0 - (l1 * std::exp(-l0 * h) - l0 * std::exp(-l1 * h)) / (l1 - l0);
        const double p_lead = 0.4 * hypo, p_demo = 0.8 * (1.0 - std::exp(-l1 * h));
        const double expected = 1000.0 * p_lead + 2000.0 * p_demo + 500.0 * 0.4 * p_demo / 0.8;
        period_forecast_options opt;
        opt.per_deal = true;
        const auto q = period_forecast(g, b, h, opt);
        CHECK(q.method == period_method::markov_exact);
        CHECK(q.step == 0.0);
        CHECK(q.error_estimate == 0.0);
        CHECK(rel(q.expected, expected) < 1e-12);
        REQUIRE(q.deal_probability.size() == 3);
        CHECK(q.deal_probability[0] == doctest::Approx(p_lead).epsilon(1e-12));
        CHECK(q.deal_probability[1] == doctest::Approx(p_demo).epsilon(1e-12)); // age is irrelevant
        CHECK(q.by_stage[1].expected == doctest::Approx(2000.0 * p_demo + 200.0 * p_demo / 0.8).epsilon(1e-12));
        CHECK(q.horizon == h);

        // The renewal method on the same model converges to it at O(Δ²).
        double prev_err = 0.0;
        for (const std::size_t steps : {200u, 400u, 800u}) {
            period_forecast_options r;
            r.method = period_method::renewal;
            r.steps = steps;
            const auto qr = period_forecast(g, b, h, r);
            CHECK(qr.method == period_method::renewal);
            CHECK(qr.step == doctest::Approx(h / static_cast<double>(steps)));
            const double err = std::abs(qr.expected - expected);
            CHECK(err < 1e-3 * expected);
            if (prev_err > 0.0) CHECK(prev_err / err > 3.0); // ≈ 4 for O(Δ²)
            prev_err = err;
        }
    }

    SUBCASE("period forecast, one gamma or Weibull stage: closed form at any age") {
        // P(win within h | age a) = p (1 − S(a + h) / S(a)); the lattice values are exact here
        // (after exit the deal is absorbed), so the difference is the age interpolation alone.
        const double p = 0.6, h = 30.0;
        const double k = 2.0, theta = 5.0; // gamma, mean 10
        const double wk = 1.5, wmean = 12.0;
        const double lam = wmean / std::tgamma(1.0 + 1.0 / wk);
        struct family_case {
            dwell_distribution d;
            std::function<double(double)> surv;
        };
        const std::vector<family_case> cases{
            {dwell_distribution::gamma(k, k * theta), [&](double t) { return boost::math::gamma_q(k, t / theta); }},
            {dwell_distribution::weibull(wk, wmean), [&](double t) { return std::exp(-std::pow(t / lam, wk)); }},
            {dwell_distribution::lognormal(10.0, 6.0), [](double t) {
                 const double s2 = std::log1p(0.36), mu = std::log(10.0) - 0.5 * s2;
                 return 0.5 * std::erfc((std::log(t) - mu) / std::sqrt(2.0 * s2));
             }}};
        for (const auto& fc : cases) {
            CAPTURE(to_string(fc.d.family()));
            const auto g = one_stage(fc.d, p);
            book b(g);
            std::mt19937_64 rng(7);
            std::uniform_real_distribution<double> age(0.0, 45.0);
            std::vector<double> exact;
            for (int i = 0; i < 500; ++i) {
                const double a = i == 0 ? 0.0 : age(rng);
                b.add(std::to_string(i), 0, 100.0, a);
                const double sa = a == 0.0 ? 1.0 : fc.surv(a);
                exact.push_back(p * (1.0 - fc.surv(a + h) / sa));
            }
            // Very old deals: the sparse lattice (5·10^5 days: millions of cells) and the
            // beyond-the-lattice path (10^20 days). Where S(a) underflows the residual still
            // holds (issue 11): the gamma (k = 2) residual is e^{-u}(1 + x + u)/(1 + x),
            // x = a/θ, u = h/θ (→ the exponential); the lognormal hazard at 10^20 is ~1e-18
            // (P ≈ 0); the Weibull hazard (k > 1) there is huge: won with p.
            for (const double a : {5e5, 1e20}) {
                b.add(std::to_string(b.size()), 0, 100.0, a);
                const double sa = fc.surv(a);
                const bool weibull_far = fc.d.family() == dwell_family::weibull && a > 1e6;
                if (sa > 0.0 && !weibull_far) exact.push_back(p * (1.0 - fc.surv(a + h) / sa));
                else if (fc.d.family() == dwell_family::gamma)
                    exact.push_back(p * (1.0 - std::exp(-h / theta) * (1.0 + a / theta + h / theta) / (1.0 + a / theta)));
                else if (fc.d.family() == dwell_family::lognormal) exact.push_back(0.0);
                else exact.push_back(p);
            }
            double prev = 0.0;
            for (const std::size_t steps : {100u, 200u, 400u}) {
                CAPTURE(steps);
                period_forecast_options opt;
                opt.per_deal = true;
                opt.steps = steps;
                const auto q = period_forecast(g, b, h, opt);
                CHECK(q.method == period_method::renewal);
                double worst = 0.0, total_err = 0.0;
                for (std::size_t i = 0; i < b.size(); ++i) {
                    const double e = std::abs(q.deal_probability[i] - exact[i]);
                    worst = std::max(worst, e);
                    total_err += 100.0 * e;
                }
                CHECK(q.deal_probability[0] == doctest::Approx(exact[0]).epsilon(1e-12)); // a lattice node
                CHECK(worst <= q.max_deal_error + 1e-13);          // the estimate bounds every deal
                CHECK(total_err <= q.error_estimate + 1e-9);
                CHECK(worst < 1e-3);
                // O(Δ²) in the age spacing, except that the Weibull hazard (k = 1.5) has P'' ~ a^(k−2)
                // near age 0: there the first age cell converges at O(Δ^k), a ratio 2^1.5 ≈ 2.8.
                if (prev > 0.0) CHECK(prev / worst > (fc.d.family() == dwell_family::weibull ? 2.4 : 3.0));
                prev = worst;
            }
        }
    }

    SUBCASE("period forecast, two stages (gamma then exponential): independent quadrature") {
        // Lead: gamma(k=2, mean 10) -> Close with probability 1; Close: exponential mean 5,
        // -> Won 0.5. P(win within h | Lead, a) = 0.5 ∫_0^h f_R(r) (1 − e^{−(h−r)/5}) dr with
        // the residual density f_R(r) = f(a + r) / S(a), by composite Simpson (20000 cells).
        Eigen::MatrixXd t(2, 4);
        t << 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.5;
        const stage_graph g({{"Lead", dwell_distribution::gamma(2.0, 10.0)}, {"Close", dwell_distribution::exponential(5.0)}},
                            {{"Won", true}, {"Lost", false}}, t);
        const double theta = 5.0, h = 25.0;
        auto exact = [&](double a) {
            const double sa = (1.0 + a / theta) * std::exp(-a / theta);
            auto f = [&](double r) {
                const double x = a + r;
                return x / (theta * theta) * std::exp(-x / theta) / sa * (1.0 - std::exp(-(h - r) / 5.0));
            };
            const int cells = 20000;
            const double dr = h / cells;
            double s = f(0.0) + f(h);
            for (int i = 1; i < cells; ++i) s += (i % 2 ? 4.0 : 2.0) * f(i * dr);
            return 0.5 * s * dr / 3.0;
        };
        book b(g);
        const std::vector<double> ages{0.0, 1.3, 4.0, 7.77, 15.2, 33.3};
        for (std::size_t i = 0; i < ages.size(); ++i) b.add(std::to_string(i), 0, 1.0, ages[i]);
        std::vector<double> errors;
        for (const std::size_t steps : {250u, 500u, 1000u, 2000u}) {
            period_forecast_options opt;
            opt.per_deal = true;
            opt.steps = steps;
            const auto q = period_forecast(g, b, h, opt);
            double worst = 0.0;
            for (std::size_t i = 0; i < ages.size(); ++i) worst = std::max(worst, std::abs(q.deal_probability[i] - exact(ages[i])));
            errors.push_back(worst);
        }
        CHECK(errors.back() < 2e-6);
        for (std::size_t i = 1; i < errors.size(); ++i) CHECK(errors[i - 1] / errors[i] > 3.0); // O(Δ²)
    }

    SUBCASE("period forecast, fixed and empirical dwells: exact sums over the atoms") {
        const double p = 0.7;
        {
            const auto g = one_stage(dwell_distribution::fixed(10.0), p);
            book b(g);
            b.add("early", 0, 1.0, 2.0);   // leaves at 8 > h = 6: not within
            b.add("late", 0, 1.0, 5.0);    // leaves at 5 <= 6
            b.add("overdue", 0, 1.0, 12.0); // past the fixed time: leaves at once
            period_forecast_options opt;
            opt.per_deal = true;
            const auto q = period_forecast(g, b, 6.0, opt);
            CHECK(q.deal_probability[0] == 0.0);
            CHECK(q.deal_probability[1] == doctest::Approx(p).epsilon(1e-12));
            CHECK(q.deal_probability[2] == doctest::Approx(p).epsilon(1e-12));
        }
        {
            const auto g = one_stage(dwell_distribution::empirical({5.0, 10.0, 20.0}), p);
            book b(g);
            b.add("a", 0, 1.0, 7.0); // residual atoms 3 and 13, each 1/2
            b.add("b", 0, 1.0, 0.0); // atoms 5, 10, 20
            period_forecast_options opt;
            opt.per_deal = true;
            const auto q = period_forecast(g, b, 10.0, opt);
            CHECK(q.deal_probability[0] == doctest::Approx(p * 0.5).epsilon(1e-12));
            CHECK(q.deal_probability[1] == doctest::Approx(p * 2.0 / 3.0).epsilon(1e-12));
            CHECK(q.error_estimate == 0.0);
        }
    }

    SUBCASE("period forecast of b2b6 and saas: interpolation error bounded, long horizon -> weighted") {
        for (const auto& files : {std::pair{PIPECAST_SHARED_DIR "/scenarios/b2b6.json", PIPECAST_SHARED_DIR "/scenarios/b2b6_open_deals.csv"},
                                  std::pair{PIPECAST_SOURCE_DIR "/examples/data/saas.json", PIPECAST_SOURCE_DIR "/examples/data/saas_deals.csv"}}) {
            const char* const mf = files.first; // named variables: clang 14 cannot capture a structured binding
            const char* const df = files.second;
            CAPTURE(mf);
            const auto model = load_model(mf);
            const auto& g = model.graph;
            const auto b = load_book_csv(df, g);
            const auto a = analyse(g);
            for (const double h : {30.0, 90.0}) {
                CAPTURE(h);
                period_forecast_options opt;
                opt.per_deal = true;
                const auto q = period_forecast(g, b, h, opt);
                CHECK(q.method == period_method::renewal);
                // Direct evaluation deal by deal (won_within at the deal's own age).
                const auto tab = win_time_distribution(g, h);
                double direct = 0.0, worst_excess = 0.0;
                for (std::size_t i = 0; i < b.size(); ++i) {
                    const std::size_t s = b.stages()[i];
                    double pd = won_within(g, tab, s, b.ages()[i], h);
                    const double o = b.probability_overrides()[i];
                    if (!std::isnan(o)) pd = std::min(o, pd * o / a.win_probability(static_cast<Eigen::Index>(s)));
                    direct += b.amounts()[i] * pd;
                    const double err = std::abs(pd - q.deal_probability[i]);
                    worst_excess = std::max(worst_excess, err - q.max_deal_error);
                }
                CHECK(worst_excess <= 1e-12);
                CHECK(std::abs(direct - q.expected) <= q.error_estimate + 1e-9 * direct);
                CHECK(q.error_estimate < 1e-5 * q.expected);
                // Stage lines sum to the total; nothing exceeds the weighted forecast.
                double sum = 0.0;
                for (const auto& s : q.by_stage) sum += s.expected;
                CHECK(rel(sum, q.expected) < 1e-12);
                double osum = 0.0;
                for (const auto& s : q.by_owner) osum += s.expected;
                CHECK(rel(osum, q.expected) < 1e-12);
                CHECK(q.expected < weighted_forecast(g, b).weighted_total);
            }
            // Horizon → ∞: every win has come in; the period forecast reaches the weighted one.
            const auto w = weighted_forecast(g, b, a);
            const auto q = period_forecast(g, b, 2000.0);
            CHECK(rel(q.expected, w.weighted_total) < 1e-4);
            for (std::size_t s = 0; s < g.open_count(); ++s)
                CHECK(q.by_stage[s].expected == doctest::Approx(w.by_stage[s].weighted).epsilon(1e-4));
        }
    }

    SUBCASE("period forecast on a precomputed table equals the direct call") {
        const auto model = load_model(PIPECAST_SHARED_DIR "/scenarios/b2b6.json");
        const auto b = load_book_csv(PIPECAST_SHARED_DIR "/scenarios/b2b6_open_deals.csv", model.graph);
        const auto tab = win_time_distribution(model.graph, 90.0);
        const auto a = analyse(model.graph);
        const auto q0 = period_forecast(model.graph, b, 90.0);
        const auto q1 = period_forecast(model.graph, b, 90.0, tab, a);
        CHECK(q0.expected == q1.expected);
        // A shorter horizon on the same table: within the table's O(Δ²) of a fresh table.
        const auto q2 = period_forecast(model.graph, b, 45.0, tab, a);
        const auto q3 = period_forecast(model.graph, b, 45.0);
        CHECK(rel(q2.expected, q3.expected) < 1e-4);
        CHECK_THROWS_WITH_AS((void)period_forecast(model.graph, b, 91.0, tab, a), doctest::Contains("exceeds the table"),
                             argument_error);
        const auto other_tab = win_time_distribution(three_stage(), 90.0);
        CHECK_THROWS_WITH_AS((void)period_forecast(model.graph, b, 30.0, other_tab, a), doctest::Contains("columns"),
                             argument_error);
    }

    SUBCASE("period forecast: horizon 0 and bad horizons") {
        const auto model = load_model(PIPECAST_SOURCE_DIR "/examples/data/saas.json");
        const auto b = load_book_csv(PIPECAST_SOURCE_DIR "/examples/data/saas_deals.csv", model.graph);
        CHECK(period_forecast(model.graph, b, 0.0).expected == 0.0);
        CHECK(period_forecast(three_stage(), book(three_stage()), 0.0).expected == 0.0);
        CHECK_THROWS_WITH_AS((void)period_forecast(model.graph, b, -1.0), doctest::Contains("horizon"), argument_error);
        CHECK_THROWS_WITH_AS((void)period_forecast(model.graph, b, -1.0), doctest::Contains("-1"), argument_error);
        CHECK_THROWS_AS((void)period_forecast(model.graph, b, std::nan("")), argument_error);
        CHECK_THROWS_AS((void)period_forecast(model.graph, b, HUGE_VAL), argument_error);
        period_forecast_options exact;
        exact.method = period_method::markov_exact;
        CHECK_THROWS_WITH_AS((void)period_forecast(model.graph, b, 30.0, exact), doctest::Contains("exponential"),
                             argument_error);
    }

    SUBCASE("sales progress: the DOMAIN.md formula by hand") {
        // Last week: forecast 900k + closed 200k = 1.1M; this week: 950k + 350k = 1.3M.
        const auto r = sales_progress({900'000.0, 200'000.0}, {950'000.0, 350'000.0}, 3'000'000.0);
        CHECK(r.last_week == 1'100'000.0);
        CHECK(r.this_week == 1'300'000.0);
        CHECK(r.progress == doctest::Approx(200'000.0));
        CHECK(r.share_of_quota == doctest::Approx(1.0 / 15.0));
        CHECK(r.steady_share == doctest::Approx(1.0 / 13.0));
        CHECK(r.pace == doctest::Approx(13.0 / 15.0));
        // A week that lost ground (a big deal slipped out): negative progress.
        const auto down = sales_progress({1'000'000.0, 0.0}, {700'000.0, 100'000.0}, 2'000'000.0, 12.0);
        CHECK(down.progress == doctest::Approx(-200'000.0));
        CHECK(down.share_of_quota == doctest::Approx(-0.1));
        CHECK(down.steady_share == doctest::Approx(1.0 / 12.0));

        // From two books on one model.
        const auto g = three_stage();
        book last(g), now(g);
        last.add("A", 0, 1000.0, 0.0); // 200
        last.add("B", 1, 1000.0, 0.0); // 500
        now.add("B", 2, 1000.0, 0.0);  // 800 (A was lost)
        const auto r2 = sales_progress(g, last, 0.0, now, 0.0, 10'000.0);
        CHECK(r2.progress == doctest::Approx(100.0));
        CHECK(r2.share_of_quota == doctest::Approx(0.01));
        const auto r3 = sales_progress(weighted_forecast(g, last), 0.0, weighted_forecast(g, now), 150.0, 10'000.0);
        CHECK(r3.progress == doctest::Approx(250.0));
    }

    SUBCASE("sales progress: bad inputs name the value") {
        CHECK_THROWS_WITH_AS((void)sales_progress({1.0, 0.0}, {2.0, 0.0}, 0.0), doctest::Contains("quota"), argument_error);
        CHECK_THROWS_WITH_AS((void)sales_progress({1.0, 0.0}, {2.0, 0.0}, -5.0), doctest::Contains("-5"), argument_error);
        CHECK_THROWS_AS((void)sales_progress({1.0, 0.0}, {2.0, 0.0}, std::nan("")), argument_error);
        CHECK_THROWS_WITH_AS((void)sales_progress({-1.0, 0.0}, {2.0, 0.0}, 10.0), doctest::Contains("last week's forecast"),
                             argument_error);
        CHECK_THROWS_WITH_AS((void)sales_progress({1.0, 0.0}, {2.0, HUGE_VAL}, 10.0), doctest::Contains("this week's closed-won"),
                             argument_error);
        CHECK_THROWS_WITH_AS((void)sales_progress({1.0, 0.0}, {2.0, 0.0}, 10.0, 0.0), doctest::Contains("weeks_in_period"),
                             argument_error);
    }

    SUBCASE("results print") {
        const auto g = three_stage();
        book b(g);
        b.add({"A", "Lead", 100.0, 0.0, "ann", "pipeline", "EUR", std::nullopt});
        b.add({"B", "Proposal", 300.0, 1.0, "", "commit", "EUR", 0.9});
        std::ostringstream os;
        os << weighted_forecast(g, b);
        CHECK(os.str().find("weighted forecast: 2 deals") != std::string::npos);
        CHECK(os.str().find("Proposal") != std::string::npos);
        CHECK(os.str().find("(none)") != std::string::npos);
        CHECK(os.str().find("290.00") != std::string::npos);
        std::ostringstream os2;
        os2 << period_forecast(g, b, 10.0);
        CHECK(os2.str().find("markov_exact") != std::string::npos);
        std::ostringstream os3;
        os3 << sales_progress({900'000.0, 200'000.0}, {950'000.0, 350'000.0}, 3'000'000.0);
        CHECK(os3.str().find("+200000.00") != std::string::npos);
        CHECK(os3.str().find("6.7% of quota") != std::string::npos);
        std::ostringstream os4;
        os4 << age_aware_forecast(g, b);
        CHECK(os4.str().find("CRM-style weighted 290.00, age-aware weighted 290.00 EUR") != std::string::npos);
        CHECK(os4.str().find("likely stalled (P >= 0.50) 0 deals") != std::string::npos);
        CHECK(os.precision() == 6); // stream state restored
    }
}

// ---------------------------------------------------------------------------------------
// Branched models (stage_graph branches: per-branch dwells, a stalled share)
// ---------------------------------------------------------------------------------------

namespace {

/// A one-stage branched model: each branch {target, probability, dwell, stalled}.
stage_graph one_branched_stage(std::vector<stage_branch> branches) {
    std::vector<open_stage> st{{"S", dwell_distribution::exponential(1.0), std::move(branches)}};
    return stage_graph::from_rows(std::move(st), {{"Won", true}, {"Lost", false}}, {});
}

dwell_distribution spec_dwell(const nlohmann::json& j) {
    const std::string d = j.at("dist");
    if (d == "gamma") return dwell_distribution::gamma(j.at("shape"), j.at("mean"));
    if (d == "lognormal") return dwell_distribution::lognormal(j.at("mean"), j.at("sd"));
    REQUIRE(d == "exponential");
    return dwell_distribution::exponential(j.at("mean"));
}

const nlohmann::json& crm4_truth() {
    static const nlohmann::json j = [] {
        std::ifstream in(PIPECAST_SHARED_DIR "/scenarios/crm4_truth.json");
        return nlohmann::json::parse(in);
    }();
    return j;
}

/// The crm4 generator's process as a branched graph: a stage with stall s and edges
/// {to, p, dwell} has branches (1 − s)·p each plus {Lost, s, cleanup, stalled}. `z` shifts
/// the logit of the shock stage's Won share of its Won + Lost probability by σ z (the
/// quarter's market shock; z = 0 is the median quarter).
stage_graph crm4_graph(double z = 0.0) {
    const auto& spec = crm4_truth().at("spec");
    const double sigma = spec.at("quarter_shock_sigma");
    std::vector<open_stage> stages;
    for (const auto& s : spec.at("stages")) {
        const double stall = s.at("stall");
        double pw = 0.0, pl = 0.0;
        for (const auto& e : s.at("edges")) {
            if (e.at("to") == "Won") pw = e.at("p");
            if (e.at("to") == "Lost") pl = e.at("p");
        }
        std::vector<stage_branch> br;
        for (const auto& e : s.at("edges")) {
            double p = e.at("p");
            if (s.at("name") == spec.at("shock_stage") && (e.at("to") == "Won" || e.at("to") == "Lost")) {
                const double q = 1.0 / (1.0 + std::exp(-(std::log(pw / pl) + sigma * z)));
                p = (e.at("to") == "Won" ? q : 1.0 - q) * (pw + pl);
            }
            br.push_back({e.at("to"), (1.0 - stall) * p, spec_dwell(e.at("dwell")), false});
        }
        br.push_back({"Lost", stall, spec_dwell(spec.at("cleanup")), true});
        stages.push_back({s.at("name"), dwell_distribution::exponential(1.0), std::move(br)});
    }
    return stage_graph::from_rows(std::move(stages), {{"Won", true}, {"Lost", false}}, {});
}

/// Probabilists' Gauss–Hermite nodes and weights (10 points; weights sum to 1): E f(Z) for Z ~ N(0, 1).
constexpr double gh_node[] = {-4.85946282833231, -3.58182348355193, -2.48432584163896, -1.46598909439116,
                              -0.484935707515498, 0.484935707515498, 1.46598909439116,  2.48432584163896,
                              3.58182348355193,  4.85946282833231};
constexpr double gh_weight[] = {4.31065263071829e-06, 0.000758070934312218, 0.0191115805007703, 0.135483702980268,
                                0.344642334932019,    0.344642334932019,    0.135483702980268,  0.0191115805007703,
                                0.000758070934312218, 4.31065263071829e-06};

} // namespace

TEST_CASE("forecast on branched models") {
    SUBCASE("one stage, exponential branches: closed forms at any age") {
        // Won: π 0.5, mean 10; Lost: π 0.4, mean 40; stalled: π 0.1, mean 300. A deal of age a
        // leaves by branch k with w_k(a) ∝ π_k e^{−a/μ_k}; then P(win | a) = w_won(a),
        // P(win within h | a) = w_won(a) (1 − e^{−h/10}), P(stalled | a) = w_stalled(a).
        const double h = 30.0;
        const auto g = one_branched_stage({{"Won", 0.5, dwell_distribution::exponential(10.0)},
                                           {"Lost", 0.4, dwell_distribution::exponential(40.0)},
                                           {"Lost", 0.1, dwell_distribution::exponential(300.0), true}});
        auto weight = [](double a, int k) {
            const double v[] = {0.5 * std::exp(-a / 10.0), 0.4 * std::exp(-a / 40.0), 0.1 * std::exp(-a / 300.0)};
            return v[k] / (v[0] + v[1] + v[2]);
        };
        book b(g);
        std::mt19937_64 rng(11);
        std::uniform_real_distribution<double> age(0.0, 200.0);
        std::vector<double> ages;
        for (int i = 0; i < 400; ++i) {
            ages.push_back(i == 0 ? 0.0 : age(rng));
            b.add(std::to_string(i), 0, 100.0, ages.back());
        }
        double prev = 0.0;
        for (const std::size_t steps : {200u, 400u, 800u}) {
            CAPTURE(steps);
            period_forecast_options opt;
            opt.per_deal = true;
            opt.steps = steps;
            const auto q = period_forecast(g, b, h, opt);
            CHECK(q.method == period_method::renewal);
            double worst = 0.0, total = 0.0, total_err = 0.0;
            for (std::size_t i = 0; i < b.size(); ++i) {
                const double exact = weight(ages[i], 0) * -std::expm1(-h / 10.0);
                const double e = std::abs(q.deal_probability[i] - exact);
                worst = std::max(worst, e);
                total += 100.0 * exact;
                total_err += 100.0 * e;
            }
            CHECK(q.deal_probability[0] == doctest::Approx(0.5 * -std::expm1(-h / 10.0)).epsilon(1e-12));
            CHECK(worst <= q.max_deal_error + 1e-13); // the estimate bounds every deal
            CHECK(total_err <= q.error_estimate + 1e-9);
            CHECK(q.expected == doctest::Approx(total).epsilon(1e-5));
            if (prev > 0.0) CHECK(prev / worst > 3.0); // O(d²) in the age spacing
            prev = worst;
        }
        age_aware_options ao;
        ao.per_deal = true;
        const auto f = age_aware_forecast(g, b, ao);
        double crm = 0.0, aged = 0.0, stalled = 0.0;
        std::size_t likely = 0;
        for (std::size_t i = 0; i < b.size(); ++i) {
            CHECK(f.deal_win_probability[i] == doctest::Approx(weight(ages[i], 0)).epsilon(1e-12));
            CHECK(f.deal_stalled_probability[i] == doctest::Approx(weight(ages[i], 2)).epsilon(1e-12));
            crm += 100.0 * 0.5;
            aged += 100.0 * weight(ages[i], 0);
            stalled += weight(ages[i], 2);
            likely += weight(ages[i], 2) >= 0.5 ? 1 : 0;
        }
        CHECK(f.weighted_total == doctest::Approx(crm));
        CHECK(f.weighted_total == doctest::Approx(weighted_forecast(g, b).weighted_total));
        CHECK(f.age_weighted_total == doctest::Approx(aged));
        CHECK(f.expected_stalled == doctest::Approx(stalled));
        CHECK(f.likely_stalled == likely);
        CHECK(likely > 0);
        CHECK(f.by_stage[0].age_weighted == doctest::Approx(aged));
        CHECK(f.by_stage[0].likely_stalled == likely);
    }

    SUBCASE("one stage, gamma and lognormal branches: closed form P(win within h | age)") {
        // P(win within h | a) = w_won(a) (1 − S_won(a + h) / S_won(a)), w_k(a) ∝ π_k S_k(a).
        const double h = 45.0, k = 3.0, theta = 5.0; // gamma: mean 15
        const auto won = dwell_distribution::gamma(k, k * theta);
        const auto lost = dwell_distribution::lognormal(40.0, 30.0);
        const auto g = one_branched_stage({{"Won", 0.7, won}, {"Lost", 0.3, lost}});
        auto s_won = [&](double t) { return boost::math::gamma_q(k, t / theta); };
        const double s2 = std::log1p(0.5625), mu = std::log(40.0) - 0.5 * s2;
        auto s_lost = [&](double t) { return t <= 0.0 ? 1.0 : 0.5 * std::erfc((std::log(t) - mu) / std::sqrt(2.0 * s2)); };
        book b(g);
        std::vector<double> exact;
        for (int i = 0; i <= 120; ++i) {
            const double a = 0.37 * i;
            b.add(std::to_string(i), 0, 1.0, a);
            const double ww = 0.7 * s_won(a) / (0.7 * s_won(a) + 0.3 * s_lost(a));
            exact.push_back(ww * (1.0 - s_won(a + h) / s_won(a)));
        }
        period_forecast_options opt;
        opt.per_deal = true;
        opt.steps = 1000;
        const auto q = period_forecast(g, b, h, opt);
        double worst = 0.0;
        for (std::size_t i = 0; i < b.size(); ++i) {
            CAPTURE(i);
            worst = std::max(worst, std::abs(q.deal_probability[i] - exact[i]));
            CHECK(std::abs(q.deal_probability[i] - exact[i]) <= 1e-12 + q.max_deal_error + 1e-5); // + table's O(Δ²)
        }
        CHECK(worst < 1e-4);
    }

    SUBCASE("crm4 truth spec: lattice forecast equals won_within deal by deal") {
        // An independent route: won_within mixes the latent states at each deal's own age with its
        // own quadrature; the forecast interpolates the mixed probability on the age lattice.
        const stage_graph g = crm4_graph();
        const double h = 90.0;
        book b(g);
        std::mt19937_64 rng(5);
        std::exponential_distribution<double> age(1.0 / 40.0);
        for (int i = 0; i < 2000; ++i) b.add(std::to_string(i), static_cast<std::size_t>(i % 4), 1000.0 + i, age(rng));
        const win_time_table tab = win_time_distribution(g, h);
        period_forecast_options opt;
        opt.per_deal = true;
        const auto q = period_forecast(g, b, h, opt);
        CHECK(q.step == doctest::Approx(tab.step));
        double err_total = 0.0, worst_rel = 0.0;
        for (std::size_t i = 0; i < b.size(); ++i) {
            const double ref = won_within(g, tab, b.stages()[i], b.ages()[i], h);
            const double e = std::abs(q.deal_probability[i] - ref);
            err_total += b.amounts()[i] * e;
            worst_rel = std::max(worst_rel, e / std::max(q.max_deal_error, 1e-300));
            CHECK(e <= 2.0 * q.max_deal_error + 1e-9);
        }
        CHECK(err_total <= q.error_estimate + 1e-6);
        CHECK(q.max_deal_error < 1e-3);
        // The precomputed-table overload gives the same numbers.
        const auto q2 = period_forecast(g, b, h, tab, analyse(g), true);
        CHECK(q2.expected == q.expected);
    }

    SUBCASE("crm4: P(won within 90 | stage, age), P(win | stage, age), P(stalled | stage, age) against the truth") {
        // crm4_truth.json averages over the quarterly logit-normal shock (σ = 0.35) on
        // Negotiation's Won/Lost split. A deal of age a in the shocked stage has survived there,
        // which tilts its shock: E[P(z) | T > a] = Σ_n w_n S(a | z_n) P(z_n) / Σ_n w_n S(a | z_n)
        // (Gauss–Hermite nodes z_n). The median-quarter model (z = 0) is within 0.01.
        const auto& truth = crm4_truth().at("truth");
        const double h = 90.0;
        const stage_graph g0 = crm4_graph(0.0);
        std::vector<stage_graph> gs;
        for (double z : gh_node) gs.push_back(crm4_graph(z));
        auto survival = [](const stage_graph& g, std::size_t s, double a) {
            double sv = 0.0;
            for (const auto& br : g.branches(s)) sv += br.probability * std::exp(log_survival(br.dwell, a));
            return sv;
        };
        for (const auto& item : truth.items()) {
            const std::string name = item.key(); // not a structured binding: clang 14 cannot capture one (CAPTURE)
            const auto& rows = item.value();
            const std::size_t s = g0.index_of(name);
            book b(g0);
            for (const auto& row : rows) b.add(std::to_string(b.size()), s, 1.0, row.at("age").get<double>());
            period_forecast_options opt;
            opt.per_deal = true;
            age_aware_options ao;
            ao.per_deal = true;
            const auto q0 = period_forecast(g0, b, h, opt);
            const auto f0 = age_aware_forecast(g0, b, ao);
            std::vector<double> num_w(b.size(), 0.0), num_e(b.size(), 0.0), num_s(b.size(), 0.0), den(b.size(), 0.0);
            for (std::size_t n = 0; n < gs.size(); ++n) {
                const auto q = period_forecast(gs[n], b, h, opt);
                const auto f = age_aware_forecast(gs[n], b, ao);
                for (std::size_t i = 0; i < b.size(); ++i) {
                    const double wt = gh_weight[n] * survival(gs[n], s, b.ages()[i]);
                    num_w[i] += wt * q.deal_probability[i];
                    num_e[i] += wt * f.deal_win_probability[i];
                    num_s[i] += wt * f.deal_stalled_probability[i];
                    den[i] += wt;
                }
            }
            for (std::size_t i = 0; i < b.size(); ++i) {
                const auto& row = rows[i];
                const double a = row.at("age");
                if (a > 120.0) continue;
                CAPTURE(name);
                CAPTURE(a);
                const double t90 = row.at("won_within_90"), tev = row.at("won_eventually"), tst = row.at("p_stalled");
                CHECK(std::abs(q0.deal_probability[i] - t90) < 0.01);
                CHECK(std::abs(f0.deal_win_probability[i] - tev) < 0.01);
                CHECK(std::abs(f0.deal_stalled_probability[i] - tst) < 0.01);
                CHECK(std::abs(num_w[i] / den[i] - t90) < 0.002);
                CHECK(std::abs(num_e[i] / den[i] - tev) < 0.002);
                CHECK(std::abs(num_s[i] / den[i] - tst) < 0.002);
            }
        }
    }

    SUBCASE("a branched stage with an empirical branch: every deal mixed at its own age") {
        const auto g = one_branched_stage({{"Won", 0.6, dwell_distribution::empirical({5.0, 10.0, 20.0})},
                                           {"Lost", 0.3, dwell_distribution::gamma(2.0, 30.0)},
                                           {"Lost", 0.1, dwell_distribution::exponential(300.0), true}});
        const double h = 12.0;
        book b(g);
        for (const double a : {0.0, 3.0, 7.0, 12.5, 25.0, 60.0}) b.add(std::to_string(b.size()), 0, 1.0, a);
        period_forecast_options opt;
        opt.per_deal = true;
        const auto q = period_forecast(g, b, h, opt);
        const win_time_table tab = win_time_distribution(g, h);
        for (std::size_t i = 0; i < b.size(); ++i) {
            CAPTURE(b.ages()[i]);
            CHECK(q.deal_probability[i] == doctest::Approx(won_within(g, tab, 0, b.ages()[i], h)).epsilon(1e-9));
        }
        // By hand: age 7: residual atoms 3 and 13 (1/2 each) of the Won branch, weight
        // 0.6·(2/3) / (0.6·(2/3) + 0.3·S_γ(7) + 0.1·e^{−7/300}); within 12: half of it.
        const double sg = (1.0 + 7.0 / 15.0) * std::exp(-7.0 / 15.0);
        const double ww = 0.4 / (0.4 + 0.3 * sg + 0.1 * std::exp(-7.0 / 300.0));
        CHECK(q.deal_probability[2] == doctest::Approx(0.5 * ww).epsilon(1e-12));
        // Past every Won atom the deal can no longer win.
        CHECK(q.deal_probability[4] == 0.0);
        CHECK(q.deal_probability[5] == 0.0);
    }

    SUBCASE("overrides on a branched stage: o × P(win within h | s, a) / P(win | s, a)") {
        const auto g = one_branched_stage({{"Won", 0.5, dwell_distribution::exponential(10.0)},
                                           {"Lost", 0.5, dwell_distribution::exponential(40.0)}});
        const double h = 20.0;
        book b(g);
        b.add("young", 0, 100.0, 0.0, 0.8);
        b.add("old", 0, 100.0, 60.0, 0.8);
        b.add("plain", 0, 100.0, 60.0);
        period_forecast_options opt;
        opt.per_deal = true;
        const auto q = period_forecast(g, b, h, opt);
        // The Won branch's share of wins within h is 1 − e^{−2} at every age.
        const double share = -std::expm1(-h / 10.0);
        CHECK(q.deal_probability[0] == doctest::Approx(0.8 * share).epsilon(1e-9));
        CHECK(q.deal_probability[1] == doctest::Approx(0.8 * share).epsilon(1e-6));
        const double w_old = 0.5 * std::exp(-6.0) / (0.5 * std::exp(-6.0) + 0.5 * std::exp(-1.5));
        CHECK(q.deal_probability[2] == doctest::Approx(w_old * share).epsilon(1e-6));
        const auto f = age_aware_forecast(g, b);
        CHECK(f.overridden == 2);
        CHECK(f.age_weighted_total == doctest::Approx(80.0 + 80.0 + 100.0 * w_old));
        CHECK(f.weighted_total == doctest::Approx(80.0 + 80.0 + 50.0));
    }

    SUBCASE("classic models: the age-aware forecast is the CRM forecast, nothing stalls") {
        const model m = load_model(PIPECAST_SHARED_DIR "/scenarios/b2b6.json");
        const book b = load_book_csv(PIPECAST_SHARED_DIR "/scenarios/b2b6_open_deals.csv", m.graph);
        const auto w = weighted_forecast(m.graph, b);
        const auto f = age_aware_forecast(m.graph, b);
        CHECK(f.age_weighted_total == doctest::Approx(w.weighted_total).epsilon(1e-12));
        CHECK(f.weighted_total == doctest::Approx(w.weighted_total).epsilon(1e-12));
        CHECK(f.expected_stalled == 0.0);
        CHECK(f.likely_stalled == 0);
        for (std::size_t s = 0; s < f.by_stage.size(); ++s) {
            CHECK(f.by_stage[s].age_weighted == doctest::Approx(w.by_stage[s].weighted).epsilon(1e-12));
            CHECK(f.by_stage[s].count == w.by_stage[s].count);
        }
        for (std::size_t k = 0; k < f.by_owner.size(); ++k)
            CHECK(f.by_owner[k].age_weighted == doctest::Approx(w.by_owner[k].weighted).epsilon(1e-12));
        age_aware_options bad;
        bad.stalled_threshold = 0.0;
        CHECK_THROWS_AS((void)age_aware_forecast(m.graph, b, bad), argument_error);
    }
}

} // namespace unit_forecast
