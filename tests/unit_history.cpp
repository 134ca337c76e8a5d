// Tests of history.hpp: the visit-log and stage-change readers and their validation.
#include <pipecast/data/history.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

// One namespace a file: the unit tests are compiled together (tests/CMakeLists.txt).
namespace unit_history {

using namespace pipecast;

namespace {

const std::string b2b6_history = PIPECAST_SHARED_DIR "/scenarios/b2b6_history.csv";

visit_log visits_from(const std::string& text, history_options opt = {}) {
    std::istringstream in(text);
    opt.source = "h.csv";
    return read_visit_log(in, opt);
}

visit_log changes_from(const std::string& text, history_options opt = {}) {
    std::istringstream in(text);
    opt.source = "c.csv";
    return read_stage_changes(in, opt);
}

/// The parse_error a reader throws on `text` (fails the test if none).
struct caught {
    std::size_t line = 0, column = 0;
    std::string what;
};
template <class Read>
caught error_of(Read&& read) {
    try {
        read();
    } catch (const parse_error& e) {
        return {e.line(), e.column(), e.what()};
    }
    FAIL("no parse_error thrown");
    return {};
}

/// history_options with chainable setters (designated initializers warn on g++ 12).
struct opts : history_options {
    opts& at(std::string t) { as_of = std::move(t); return *this; }
    opts& skip() { skip_bad_rows = true; return *this; }
    opts& unit(double d) { days_per_unit = d; return *this; }
    opts& known(std::vector<std::string> s) { stages = std::move(s); return *this; }
    opts& ends(std::vector<std::string> o) { outcomes = std::move(o); return *this; }
};

const char* header = "deal_id,stage,entered,exited,next_stage,amount\n";

/// The stage-change export equivalent to a visit log: one row per entry, plus a final row
/// in the outcome for closed deals.
std::string as_stage_changes(const visit_log& log) {
    std::ostringstream os;
    os.precision(17);
    os << "deal_id,stage,changed_at,amount\n";
    for (std::size_t i = 0; i < log.size(); ++i) {
        os << log.deal_ids[log.deal[i]] << ',' << log.stage_names[log.stage[i]] << ',' << log.entered[i] << ','
           << log.amount[i] << '\n';
        const bool last = i + 1 == log.size() || log.deal[i + 1] != log.deal[i];
        if (last && !log.censored(i))
            os << log.deal_ids[log.deal[i]] << ',' << log.stage_names[log.next[i]] << ',' << log.exited[i] << ','
               << log.amount[i] << '\n';
    }
    return os.str();
}

} // namespace

TEST_CASE("history") {
    SUBCASE("b2b6 visit log") {
        history_options opt;
        opt.as_of = "730";
        const visit_log log = load_visit_log(b2b6_history, opt);
        CHECK(log.size() == 54711);
        CHECK(log.deal_count() == 28930);
        CHECK(log.end_time == 730.0);
        CHECK_FALSE(log.dates);
        CHECK(log.skipped.empty());
        std::size_t censored = 0;
        for (std::size_t i = 0; i < log.size(); ++i) censored += log.censored(i);
        CHECK(censored == 812); // 261 + 215 + 103 + 130 + 103 open visits at day 730
        for (const char* s : {"Prospecting", "Qualification", "Demo", "Proposal", "Negotiation"})
            CHECK(log.stage_open[*log.find_stage(s)] == 1);
        for (const char* s : {"Won", "Lost"}) CHECK(log.stage_open[*log.find_stage(s)] == 0);
        // first rows of the file: D000003 goes Prospecting -> ... -> Won
        const auto d3 = std::find(log.deal_ids.begin(), log.deal_ids.end(), "D000003") - log.deal_ids.begin();
        std::size_t i = 0;
        while (log.deal[i] != static_cast<std::uint32_t>(d3)) ++i;
        CHECK(log.stage_names[log.stage[i]] == "Prospecting");
        CHECK(log.entered[i] == doctest::Approx(0.1076));
        CHECK(log.duration(i) == doctest::Approx(4.8315 - 0.1076));
        CHECK(log.stage_names[log.next[i + 4]] == "Won");
        CHECK(log.amount[i] == doctest::Approx(25173.31));
        CHECK(log.line[i] == 5);
        // without as-of the log ends at its latest time
        const visit_log log2 = load_visit_log(b2b6_history);
        CHECK(log2.end_time <= 730.0);
        CHECK(log2.end_time > 729.0);
        // load_history tells the formats apart
        CHECK(load_history(b2b6_history, opt).size() == log.size());
        CHECK_THROWS_AS((void)load_visit_log("/nonexistent/h.csv"), error);
    }

    SUBCASE("hand-made visit log: columns, sorting, censoring, extra columns") {
        const visit_log log = visits_from(std::string("deal_id,owner,stage,entered,exited,next_stage,amount\n") +
                                              "B,ann,Lead,2,5,Won,100\n"
                                              "A,bob,Demo,3,,,\n"
                                              "A,bob,Lead,0,3,Demo,50\n",
                                          opts().at("10"));
        REQUIRE(log.size() == 3);
        // sorted by deal (first appearance: B, A) then entry time
        CHECK(log.deal_ids[log.deal[0]] == "B");
        CHECK(log.deal_ids[log.deal[1]] == "A");
        CHECK(log.stage_names[log.stage[1]] == "Lead");
        CHECK(log.stage_names[log.stage[2]] == "Demo");
        CHECK(log.censored(2));
        CHECK(std::isnan(log.exited[2]));
        CHECK(log.duration(2) == 7.0); // censored at the as-of time 10
        CHECK(log.duration(1) == 3.0);
        CHECK(std::isnan(log.amount[2]));
        CHECK(log.line[2] == 3);
        REQUIRE(log.find_column("Owner"));
        const std::size_t c = *log.find_column("owner");
        CHECK(log.extra_values[c][log.extra[c][0]] == "ann");
        CHECK(log.extra_values[c][log.extra[c][2]] == "bob");
        CHECK(log.stage_open[*log.find_stage("Won")] == 0);
        CHECK(log.stage_open[*log.find_stage("Demo")] == 1);
    }

    SUBCASE("ISO-8601 dates become days, then model time units") {
        const std::string text = std::string(header) +
                                 "A,Lead,2026-01-01,2026-01-15,Demo,10\n"
                                 "A,Demo,2026-01-15,,,10\n";
        const visit_log days = visits_from(text, opts().at("2026-01-29"));
        CHECK(days.dates);
        CHECK(days.duration(0) == doctest::Approx(14.0));
        CHECK(days.duration(1) == doctest::Approx(14.0));
        const visit_log weeks = visits_from(text, opts().unit(7.0).at("2026-01-29"));
        CHECK(weeks.duration(0) == doctest::Approx(2.0));
        CHECK(weeks.duration(1) == doctest::Approx(2.0));
        // date-times with zones
        const visit_log dt = visits_from(std::string(header) + "A,Lead,2026-01-01T12:00Z,2026-01-02T00:00+00:00,Won,1\n");
        CHECK(dt.duration(0) == doctest::Approx(0.5));
        // mixing dates and numbers
        const auto e = error_of([] { (void)visits_from(std::string(header) + "A,Lead,2026-01-01,20460,Won,1\n"); });
        CHECK(e.line == 2);
        CHECK(e.column == 4);
        CHECK(e.what.find("mixes") != std::string::npos);
        // an as-of of the other kind
        CHECK_THROWS_AS((void)visits_from(std::string(header) + "A,Lead,2026-01-01,,,1\n", opts().at("5")), argument_error);
    }

    SUBCASE("stage-change export gives the same visits as the visit log") {
        history_options opt;
        opt.as_of = "730";
        const visit_log log = load_visit_log(b2b6_history, opt);
        const visit_log ch = changes_from(as_stage_changes(log), opt);
        REQUIRE(ch.size() == log.size());
        CHECK(ch.deal_count() == log.deal_count());
        CHECK(ch.end_time == log.end_time);
        std::size_t mismatches = 0;
        for (std::size_t i = 0; i < log.size(); ++i) {
            const bool same = ch.deal_ids[ch.deal[i]] == log.deal_ids[log.deal[i]] &&
                              ch.stage_names[ch.stage[i]] == log.stage_names[log.stage[i]] &&
                              ch.entered[i] == log.entered[i] && ch.censored(i) == log.censored(i) &&
                              (log.censored(i) || (ch.exited[i] == log.exited[i] &&
                                                   ch.stage_names[ch.next[i]] == log.stage_names[log.next[i]])) &&
                              ch.amount[i] == log.amount[i];
            mismatches += !same;
        }
        CHECK(mismatches == 0);
        for (const char* s : {"Won", "Lost"}) CHECK(ch.stage_open[*ch.find_stage(s)] == 0);
        CHECK(ch.stage_open[*ch.find_stage("Negotiation")] == 1);
        // load_history recognises the format
        const std::string path = (std::filesystem::temp_directory_path() / "pipecast_unit_history_changes.csv").string();
        {
            std::ofstream out(path);
            out << as_stage_changes(log);
        }
        CHECK(load_history(path, opt).size() == log.size());
        std::filesystem::remove(path);
        std::istringstream a("deal_id,stage,changed_at\n"), b("id,to_stage,date\n"), c{std::string(header)};
        CHECK(is_stage_change_log(a));
        CHECK(is_stage_change_log(b));
        CHECK_FALSE(is_stage_change_log(c));
        CHECK(std::string(std::istreambuf_iterator<char>(c), {}) == header); // rewound
    }

    SUBCASE("stage-change export: repeated rows merge, as-of censoring, named outcomes") {
        const visit_log ch = changes_from("deal,stage,changed_at\n"
                                          "A,Lead,0\n"
                                          "A,Lead,1\n" // not a change: merged
                                          "A,Demo,4\n"
                                          "B,Lead,2\n"
                                          "A,Closed Won,6\n"
                                          "B,Closed Lost,3\n",
                                          opts().at("9"));
        REQUIRE(ch.size() == 3);
        CHECK(ch.repeated_rows == 1);
        CHECK(ch.duration(0) == 4.0); // A in Lead 0..4
        CHECK(ch.stage_names[ch.next[0]] == "Demo");
        CHECK(ch.duration(1) == 2.0); // A in Demo 4..6 then Closed Won
        CHECK(ch.stage_names[ch.next[1]] == "Closed Won");
        CHECK(ch.duration(2) == 1.0);
        // A deal still in an open stage is censored at the as-of time; a named outcome is
        // an outcome even if a deal could be thought to "stay" there.
        const visit_log open = changes_from("deal,stage,changed_at\nA,Lead,0\nA,Demo,4\nB,Lead,1\nB,Lost,2\n",
                                            opts().at("10").ends({"Lost"}));
        REQUIRE(open.size() == 3);
        CHECK(open.censored(1));
        CHECK(open.duration(1) == 6.0);
        CHECK(open.stage_open[*open.find_stage("Demo")] == 1);
    }

    SUBCASE("every bad row is a parse_error at its line and column") {
        auto bad = [](const std::string& rows, history_options opt = {}) {
            return error_of([&] { (void)visits_from(std::string(header) + "Z,Lead,0,1,Won,5\n" + rows, opt); });
        };
        {
            const auto e = bad("A,Lead,0,1\n");
            CHECK(e.line == 3);
            CHECK(e.what.find("expected 6 fields, got 4") != std::string::npos);
        }
        {
            const auto e = bad(",Lead,0,1,Won,5\n");
            CHECK(e.line == 3);
            CHECK(e.column == 1);
            CHECK(e.what.find("empty deal id") != std::string::npos);
        }
        {
            const auto e = bad("A,Lead,zero,1,Won,5\n");
            CHECK(e.line == 3);
            CHECK(e.column == 3);
            CHECK(e.what.find("'zero'") != std::string::npos);
        }
        {
            const auto e = bad("A,Lead,5,4,Won,5\n");
            CHECK(e.line == 3);
            CHECK(e.column == 4);
            CHECK(e.what.find("ends (4) before it starts (5)") != std::string::npos);
        }
        {
            const auto e = bad("A,Lead,0,4,,5\n");
            CHECK(e.line == 3);
            CHECK(e.column == 5);
            CHECK(e.what.find("exit time needs a next stage") != std::string::npos);
        }
        {
            const auto e = bad("A,Lead,0,,Won,5\n");
            CHECK(e.line == 3);
            CHECK(e.column == 4);
            CHECK(e.what.find("next stage 'Won' without an exit time") != std::string::npos);
        }
        {
            const auto e = bad("A,Lead,0,1,Won,-5\n");
            CHECK(e.line == 3);
            CHECK(e.column == 6);
            CHECK(e.what.find("negative amount") != std::string::npos);
        }
        {
            const auto e = bad("A,,0,1,Won,5\n");
            CHECK(e.line == 3);
            CHECK(e.what.find("empty stage name") != std::string::npos);
        }
        { // overlapping visits of one deal
            const auto e = bad("A,Lead,0,5,Demo,5\nA,Demo,3,8,Won,5\n");
            CHECK(e.line == 4);
            CHECK(e.column == 3);
            CHECK(e.what.find("overlapping visits") != std::string::npos);
            CHECK(e.what.find("line 3") != std::string::npos);
        }
        { // an open visit followed by another visit
            const auto e = bad("A,Lead,0,,,5\nA,Demo,3,8,Won,5\n");
            CHECK(e.line == 4);
            CHECK(e.what.find("has no exit but the deal has a later visit") != std::string::npos);
        }
        { // next stage does not match the next visit (a typo)
            const auto e = bad("A,Lead,0,5,Dmeo,5\nA,Demo,5,8,Won,5\n");
            CHECK(e.line == 3);
            CHECK(e.column == 5);
            CHECK(e.what.find("next stage 'Dmeo' (an outcome: no deal visits it) but the deal's next visit (line 4) is in 'Demo'") !=
                  std::string::npos);
            // the same with the stages named: the typo is an unknown stage
            const auto f = bad("A,Lead,0,5,Dmeo,5\nA,Demo,5,8,Won,5\n", opts().known({"Lead", "Demo"}).ends({"Won", "Lost"}));
            CHECK(f.line == 3);
            CHECK(f.what.find("unknown stage 'Dmeo'") != std::string::npos);
            // a known open stage that is not the next visit's
            const auto g = bad("A,Lead,0,5,Demo,5\nA,Proposal,5,8,Won,5\nB,Demo,0,1,Won,5\n");
            CHECK(g.line == 3);
            CHECK(g.what.find("next stage 'Demo' but the deal's next visit (line 4) is in 'Proposal'") != std::string::npos);
        }
        { // leaves to an open stage it never visits
            const auto e = bad("A,Lead,0,5,Demo,5\nB,Demo,0,1,Won,5\n");
            CHECK(e.line == 3);
            CHECK(e.what.find("leaves to open stage 'Demo' but has no visit there") != std::string::npos);
        }
        { // a visit after an outcome
            const auto e = bad("A,Lead,0,5,Won,5\nA,Demo,6,8,Won,5\n");
            CHECK(e.line == 3);
            CHECK(e.what.find("next stage 'Won' (an outcome: no deal visits it) but the deal's next visit") != std::string::npos);
        }
        { // unknown stages when the stages are given
            const auto e = bad("A,Lead,0,5,Wonn,5\n", opts().known({"Lead"}).ends({"Won", "Lost"}));
            CHECK(e.line == 3);
            CHECK(e.column == 5);
            CHECK(e.what.find("unknown stage 'Wonn'") != std::string::npos);
            const auto f = bad("A,Leed,0,5,Won,5\n", opts().known({"Lead"}).ends({"Won", "Lost"}));
            CHECK(f.line == 3);
            CHECK(f.column == 2);
        }
        { // a time after the as-of time
            const auto e = bad("A,Lead,0,50,Won,5\n", opts().at("20"));
            CHECK(e.line == 3);
            CHECK(e.column == 4);
            CHECK(e.what.find("after the as-of time 20") != std::string::npos);
        }
        { // missing column: line 1
            const auto e = error_of([] { (void)visits_from("deal_id,stage,entered,next_stage\nA,Lead,0,Won\n"); });
            CHECK(e.line == 1);
            CHECK(e.what.find("missing required column 'exited'") != std::string::npos);
        }
        { // stage-change problems
            const auto e = error_of([] {
                (void)changes_from("deal,stage,changed_at\nA,Lead,0\nA,Won,2\nA,Demo,3\nB,Demo,1\nB,Lead,2\n",
                                   opts().ends({"Won"}));
            });
            CHECK(e.line == 4);
            CHECK(e.what.find("stage change after the outcome 'Won'") != std::string::npos);
            const auto f = error_of([] {
                (void)changes_from("deal,stage,changed_at\nA,Won,0\nB,Lead,0\nB,Won,1\n");
            });
            CHECK(f.line == 2);
            CHECK(f.what.find("first row is the outcome 'Won'") != std::string::npos);
            const auto g = error_of([] { (void)changes_from("deal,stage,changed_at\nA,Lead,yesterday\n"); });
            CHECK(g.line == 2);
            CHECK(g.column == 3);
        }
        CHECK_THROWS_AS((void)visits_from(""), parse_error);
        CHECK_THROWS_AS((void)visits_from(header, opts().unit(0.0)), argument_error);
    }

    SUBCASE("skip_bad_rows records and skips the bad rows") {
        const std::string text = std::string(header) +
                                 "A,Lead,0,1,Won,5\n"      // 2 ok
                                 "B,Lead,5,4,Won,5\n"      // 3 ends before it starts
                                 "C,Lead,0,2,Demo,5\n"     // 4 ok
                                 "C,Demo,2,x,Won,5\n"      // 5 bad number -> C's chain breaks too
                                 "D,Lead,0,3,Demo,5\n"     // 6 ok
                                 "D,Demo,1,4,Won,5\n"      // 7 overlaps line 6: D skipped
                                 "E,Lead,0,1\n"            // 8 too few fields
                                 "F,Lead,0,2,Lost,7\n";    // 9 ok
        const visit_log log = visits_from(text, opts().skip());
        std::vector<std::size_t> lines;
        for (const auto& s : log.skipped) lines.push_back(s.line);
        std::sort(lines.begin(), lines.end());
        CHECK(lines == std::vector<std::size_t>{3, 4, 5, 6, 7, 8});
        for (const auto& s : log.skipped) {
            CHECK(s.reason.find("h.csv:" + std::to_string(s.line)) == 0);
            if (s.line == 6) CHECK(s.reason.find("skipped with deal 'D' (see line 7)") != std::string::npos);
            if (s.line == 7) CHECK(s.reason.find("overlapping") != std::string::npos);
        }
        REQUIRE(log.size() == 2);
        CHECK(log.deal_ids[log.deal[0]] == "A");
        CHECK(log.deal_ids[log.deal[1]] == "F");
        // the same file without the option stops at the first bad row
        CHECK(error_of([&] { (void)visits_from(text); }).line == 3);
        // the bundled bad file (used by the CLI test)
        history_options opt;
        opt.skip_bad_rows = true;
        const visit_log f = load_visit_log(PIPECAST_SOURCE_DIR "/tests/data/history_bad.csv", opt);
        CHECK_FALSE(f.skipped.empty());
        CHECK(error_of([] { (void)load_visit_log(PIPECAST_SOURCE_DIR "/tests/data/history_bad.csv"); }).line == 4);
    }

    SUBCASE("visits built in code") {
        visit_log log;
        log.add_visit("X", "Lead", 0.0, 2.0, "Demo");
        log.add_visit("X", "Demo", 2.0, std::nan(""), "");
        log.add_visit("Y", "Lead", 1.0, 3.0, "Lost");
        log.finish(opts().at("10"));
        CHECK(log.size() == 3);
        CHECK(log.stage_open[*log.find_stage("Lost")] == 0);
        CHECK(log.duration(1) == 8.0);
        visit_log bad; // overlapping visits
        bad.add_visit("X", "Lead", 0.0, 2.0, "Demo");
        bad.add_visit("X", "Demo", 1.0, 3.0, "Won");
        CHECK_THROWS_AS(bad.finish(), parse_error);
        visit_log backwards;
        backwards.add_visit("X", "Lead", 5.0, 2.0, "Won");
        CHECK_THROWS_AS(backwards.finish(), parse_error);
        visit_log half;
        half.add_visit("X", "Lead", 0.0, 2.0, "");
        CHECK_THROWS_AS(half.finish(), parse_error);
    }
}

TEST_CASE("history: hostile input (issue 11)") {
    SUBCASE("times of ±1e308 are errors at their line and column") {
        for (const char* rows : {"A,Lead,0,1e308,Won,5\n", "A,Lead,-1e308,1,Won,5\n"}) {
            const auto e = error_of([&] { (void)visits_from(std::string(header) + "Z,Lead,0,1,Won,5\n" + rows); });
            INFO(e.what);
            CHECK(e.line == 3);
            CHECK((e.column == 3 || e.column == 4));
            CHECK(e.what.starts_with("h.csv:3:"));
            CHECK(e.what.find("is out of range") != std::string::npos);
        }
        const auto c = error_of([&] { (void)changes_from("deal_id,stage,changed_at\nA,Lead,0\nA,Won,1e300\n"); });
        CHECK(c.line == 3);
        CHECK(c.column == 3);
        CHECK(c.what.find("'1e300' is out of range") != std::string::npos);
        CHECK(visits_from(std::string(header) + "A,Lead,0,1e15,Won,5\n").size() == 1); // the bound itself is fine
        CHECK_THROWS_AS((void)visits_from(std::string(header) + "A,Lead,0,1,Won,5\n", opts().at("1e300")), argument_error);
    }
    SUBCASE("visits built in code: a time beyond 1e15 is an error naming the deal") {
        visit_log log;
        log.add_visit("X", "Lead", 0.0, 1e300, "Won");
        CHECK_THROWS_AS(log.finish(), parse_error);
    }
    SUBCASE("amounts whose sum overflows, NaN and infinity, an empty file, binary junk") {
        auto e = error_of([&] { (void)visits_from(std::string(header) + "A,Lead,0,1,Won,1e308\nB,Lead,0,1,Won,1e308\n"); });
        CHECK(e.line == 3);
        CHECK(e.what.find("sum overflows") != std::string::npos);
        e = error_of([&] { (void)visits_from(std::string(header) + "A,Lead,0,1,Won,nan\n"); });
        CHECK(e.line == 2);
        e = error_of([&] { (void)visits_from(std::string(header) + "A,Lead,inf,1,Won,5\n"); });
        CHECK(e.line == 2);
        CHECK(e.column == 3);
        e = error_of([&] { (void)visits_from(""); });
        CHECK(e.what.find("empty file") != std::string::npos);
        e = error_of([&] { (void)visits_from(std::string(header) + std::string("A,Le\0ad,0,1,Won,5\n", 18)); });
        CHECK(e.what.find("NUL byte") != std::string::npos);
    }
}

} // namespace unit_history
