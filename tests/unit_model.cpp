// Tests of model.hpp: the arrival process's expected counts (seasonal rates).
#include <pipecast/model/model.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <limits>

// One namespace a file: the unit tests are compiled together (tests/CMakeLists.txt).
namespace unit_model {

TEST_CASE("arrival_process::expected_count") {
    SUBCASE("seasonal rates: the integral of the rate, period by period") {
        pipecast::arrival_process a;
        a.period = 0.5;
        a.period_rates = {1.0, 2.0, 3.0};
        CHECK(a.expected_count(0.0) == 0.0);
        CHECK(a.expected_count(0.75) == doctest::Approx(0.5 * 1.0 + 0.25 * 2.0));
        CHECK(a.expected_count(1.5) == doctest::Approx(3.0));
    }
    SUBCASE("beyond a million periods: whole cycles in closed form, same value") {
        pipecast::arrival_process a;
        a.period = 0.5;
        a.period_rates = {1.0, 2.0, 3.0};
        // 666,666 whole cycles of 1.5 (3 arrivals each), then 0.5 at rate 1 and 0.5 at rate 2
        CHECK(a.expected_count(1e6) == doctest::Approx(666666.0 * 3.0 + 1.5).epsilon(1e-12));
        CHECK(a.expected_count(std::numeric_limits<double>::infinity()) == std::numeric_limits<double>::infinity());
    }
    SUBCASE("a tiny period or a huge horizon does not loop t / period times (clang-tidy cert-flp30-c)") {
        // before: 9e301 iterations of `s += period` (simulate's memory estimate never returned)
        pipecast::arrival_process a;
        a.period = 1e-300;
        a.period_rates = {1.0, 3.0};
        CHECK(a.expected_count(90.0) == doctest::Approx(180.0));
        a.period = 1.0;
        CHECK(a.expected_count(1e300) == doctest::Approx(2e300));
    }
}

} // namespace unit_model
