// Tests of svg.hpp: escaping (Chinese names pass through), nice ticks against hand-worked
// answers, tick labels, and the charts: marks counted, coordinates against the mapping worked
// by hand, non-finite points left out, bad input refused with a message naming it.
#include <pipecast/report/svg.hpp>

#include "test_support.hpp"
#include <doctest/doctest.h>

#include <string>
#include <vector>

// One namespace a file: the unit tests are compiled together (tests/CMakeLists.txt).
namespace unit_svg {

using namespace pipecast;
using pipecast_test::check_throws;

namespace {

std::size_t count(const std::string& s, const std::string& what) {
    std::size_t n = 0;
    for (std::size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
    return n;
}

} // namespace

TEST_CASE("svg::escape") {
    CHECK(svg::escape("a<b & \"c\" > 'd'") == "a&lt;b &amp; &quot;c&quot; &gt; &#39;d&#39;");
    CHECK(svg::escape("销售进展 Négociation") == "销售进展 Négociation");
    CHECK(svg::escape(std::string("x\x01y\tz")) == "x y\tz");
    CHECK(svg::escape("") == "");
}

TEST_CASE("svg::nice_ticks") {
    SUBCASE("steps of 1, 2, 2.5 or 5 times a power of ten") {
        const auto t = svg::nice_ticks(0.0, 93.0, 5);
        CHECK(t.step == doctest::Approx(20.0));
        CHECK(t.lo == 0.0);
        CHECK(t.hi == doctest::Approx(100.0));
        REQUIRE(t.values.size() == 6);
        CHECK(t.values[3] == doctest::Approx(60.0));
        const auto p = svg::nice_ticks(0.0, 0.93, 4); // raw step 0.2325 -> 0.25
        CHECK(p.step == doctest::Approx(0.25));
        CHECK(p.hi == doctest::Approx(1.0));
        const auto m = svg::nice_ticks(120'000.0, 1'730'000.0, 5); // raw 322,000 -> 500,000
        CHECK(m.step == doctest::Approx(500'000.0));
        CHECK(m.lo == 0.0);
        CHECK(m.hi == doctest::Approx(2'000'000.0));
        const auto n = svg::nice_ticks(-3.0, 7.0, 5); // raw 2 -> 2
        CHECK(n.step == doctest::Approx(2.0));
        CHECK(n.values.front() == doctest::Approx(-4.0));
        CHECK(n.values.back() == doctest::Approx(8.0));
    }
    SUBCASE("an empty range is widened around the value") {
        const auto t = svg::nice_ticks(5.0, 5.0, 5);
        CHECK(t.lo <= 4.5);
        CHECK(t.hi >= 5.5);
        const auto z = svg::nice_ticks(0.0, 0.0, 5);
        CHECK(z.lo <= -1.0);
        CHECK(z.hi >= 1.0);
    }
    SUBCASE("bad ranges") {
        check_throws<argument_error>([] { (void)svg::nice_ticks(1.0, 0.0); }, {"svg::nice_ticks", "[1, 0]"});
        check_throws<argument_error>([] { (void)svg::nice_ticks(0.0, std::nan("")); }, {"svg::nice_ticks", "nan"});
        check_throws<argument_error>([] { (void)svg::nice_ticks(0.0, 1.0, 0); }, {"target"});
    }
}

TEST_CASE("svg::tick_label") {
    CHECK(svg::tick_label(250'000.0, svg::axis_format::money) == "250k");
    CHECK(svg::tick_label(1'500'000.0, svg::axis_format::money) == "1.5M");
    CHECK(svg::tick_label(0.0, svg::axis_format::money) == "0");
    CHECK(svg::tick_label(2e9, svg::axis_format::money) == "2B");
    CHECK(svg::tick_label(0.4, svg::axis_format::percent) == "40%");
    CHECK(svg::tick_label(0.025, svg::axis_format::percent, 0.005) == "2.5%");
    CHECK(svg::tick_label(20269.0, svg::axis_format::date) == "2025-06-30"); // days since 1970-01-01
    CHECK(svg::tick_label(2.5, svg::axis_format::number) == "2.5");
    CHECK(svg::tick_label(120.0, svg::axis_format::number) == "120");
}

TEST_CASE("svg line chart") {
    svg::line_chart c;
    c.title = "Win <rate> 销售进展";
    c.x_min = 0.0, c.x_max = 10.0, c.y_min = 0.0, c.y_max = 1.0;
    svg::series dots = svg::dot_series("deals", {5.0, 2.0, std::nan("")}, {0.5, 0.1, 0.3}, "#123456");
    c.lines.push_back(svg::line_series("model", {0.0, 10.0}, {1.0, 0.0}, "#000000"));
    c.lines.push_back(dots);
    c.bands.push_back({"band", {0.0, 10.0}, {0.1, 0.2}, {0.3, 0.4}, "#abcdef"});
    c.references.push_back({0.8, "quota", "#ff0000"});
    const std::string s = svg::render(c);
    CHECK(s.rfind("<svg class=\"chart\"", 0) == 0);
    CHECK(s.find("</svg>") == s.size() - 6);
    CHECK(s.find("Win &lt;rate&gt; 销售进展") != std::string::npos);
    // band + line + 2 finite dots + reference line
    CHECK(count(s, "class=\"mark\"") == 5);
    CHECK(count(s, "<circle") == 2);
    // (5, 0.5) maps to the middle of the plot area: x 70 + (720 - 70 - 20) / 2, y 360 - 50 - (360 - 40 - 50) / 2.
    CHECK(s.find("cx=\"385.00\" cy=\"175.00\"") != std::string::npos);
    check_throws<argument_error>(
        [] {
            svg::line_chart bad;
            bad.lines.push_back(svg::line_series("short", {1.0, 2.0}, {1.0}, "#000"));
            (void)svg::render(bad);
        },
        {"short", "2 x values but 1 y values"});
}

TEST_CASE("svg bar chart and histogram") {
    svg::bar_chart b;
    b.title = "Funnel";
    b.categories = {"Qualification", "提案", "Négociation"};
    b.series_names = {"actual", "ideal"};
    b.colors = {"#1f77b4", "#bbbbbb"};
    b.values = {{10.0, 20.0, 30.0}, {15.0, 15.0, 0.0}};
    const std::string s = svg::render(b);
    CHECK(count(s, "<rect class=\"mark\"") == 6);
    CHECK(s.find(">提案</text>") != std::string::npos);
    b.values[1][2] = -1.0;
    check_throws<argument_error>([&] { (void)svg::render(b); }, {"Funnel", "bad value -1"});
    b.values[1].pop_back();
    check_throws<argument_error>([&] { (void)svg::render(b); }, {"3 x values but 2 y values"});

    svg::histogram_chart h;
    h.title = "Outcome";
    h.lower = 0.0;
    h.bin_width = 10.0;
    h.shares = {0.1, 0.5, 0.4};
    h.markers.push_back({15.0, "quota", "#d62728"});
    const std::string hs = svg::render(h);
    CHECK(count(hs, "<rect class=\"mark\"") == 3);
    CHECK(count(hs, "<line class=\"mark\"") == 1);
    h.shares[0] = std::nan("");
    check_throws<argument_error>([&] { (void)svg::render(h); }, {"Outcome", "bad share"});
}

TEST_CASE("svg date axis: the tick labels at the ends stay inside the chart") {
    // The date axis puts ticks at both ends of the data; a label centred on the last one
    // (x = width - right margin) stuck out of the chart by about half its width.
    svg::line_chart c;
    c.x_format = svg::axis_format::date;
    c.lines.push_back(svg::line_series("s", {20000.0, 20045.0, 20091.0}, {1.0, 2.0, 3.0}, "#000000"));
    const std::string s = svg::render(c);
    std::size_t labels = 0;
    for (std::size_t at = s.find("<text x=\""); at != std::string::npos; at = s.find("<text x=\"", at + 1)) {
        const double x = std::stod(s.substr(at + 9));
        const std::size_t close = s.find('>', at), end = s.find("</text>", at);
        const std::string label = s.substr(close + 1, end - close - 1);
        if (label.size() != 10 || label[4] != '-' || label[7] != '-') continue; // a date tick label
        ++labels;
        // About 7 px a character at font size 12, centred on x.
        CHECK(x - 35.0 >= 0.0);
        CHECK(x + 35.0 <= c.width);
    }
    CHECK(labels >= 2);
}

} // namespace unit_svg
