// Tests of book_io.hpp, detail/csv.hpp and book.hpp: reading books from CSV by header name,
// every bad-CSV case with its line and column, and book::add validation.
#include <pipecast/io/book_csv.hpp>
#include <pipecast/io/model_json.hpp>

#include "test_support.hpp"
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <unordered_set>

// One namespace a file: the unit tests are compiled together (tests/CMakeLists.txt).
namespace unit_book_io {

using pipecast::book;
using pipecast::book_csv_options;
using pipecast::parse_error;

namespace {

pipecast::stage_graph funnel() {
    return pipecast::linear_funnel({"Lead", "Demo", "Deal"}, {0.2, 0.5, 0.8}, std::vector<double>{5.0, 10.0, 20.0});
}

book read(const std::string& text, book_csv_options opt = {}) {
    std::istringstream in(text);
    if (opt.source == "<stream>") opt.source = "deals.csv";
    return pipecast::read_book_csv(in, funnel(), opt);
}

/// Expects a parse_error at line:column whose message holds every fragment.
void check_csv_error(const std::string& text, std::size_t line, std::size_t column,
                     std::initializer_list<const char*> fragments, book_csv_options opt = {}) {
    bool thrown = false;
    try {
        (void)read(text, opt);
    } catch (const parse_error& e) {
        thrown = true;
        const std::string msg = e.what();
        INFO("message: " << msg);
        CHECK(e.source() == "deals.csv");
        CHECK(e.line() == line);
        CHECK(e.column() == column);
        std::string prefix = "deals.csv";
        if (line > 0) prefix += ":" + std::to_string(line);
        if (column > 0) prefix += ":" + std::to_string(column);
        CHECK(msg.starts_with(prefix + ": "));
        for (const char* frag : fragments) {
            INFO("expected fragment: " << frag);
            CHECK(msg.find(frag) != std::string::npos);
        }
    }
    CHECK(thrown);
}

using pipecast_test::check_throws;

} // namespace

TEST_CASE("book_io") {
    SUBCASE("columns by header name, any order, extra columns ignored, aliases, case") {
        const book b = read("Amount,extra,STAGE,Deal_ID,age_in_stage,notes\n"
                            "100.5,x,Demo,A1,3.25,hello\n"
                            " 2e3 ,y, Lead ,A2,0,\n");
        REQUIRE(b.size() == 2);
        CHECK(b.ids()[0] == "A1");
        CHECK(b.stages()[0] == 1);
        CHECK(b.amounts()[0] == 100.5);
        CHECK(b.ages()[0] == 3.25);
        CHECK(b.ids()[1] == "A2");
        CHECK(b.stages()[1] == 0);
        CHECK(b.amounts()[1] == 2000.0);
        CHECK(std::isnan(b.probability_overrides()[0]));
        CHECK(b.at(0).owner.empty());
        CHECK(b.compatible_with(funnel()));
        // "value" and "id" aliases, no age column: ages are 0
        const book v = read("id,value,stage\nX,7,Deal\n");
        CHECK(v.amounts()[0] == 7.0);
        CHECK(v.ages()[0] == 0.0);
    }

    SUBCASE("quoted fields, escaped quotes, a field spanning lines, CRLF, BOM, blank lines") {
        const std::string text = "\xEF\xBB\xBFid,stage,amount,owner,category\r\n"
                                 "\"Q,1\",Demo,\"1,5\",\"Smith, John\",\"say \"\"hi\"\"\"\r\n"
                                 "\r\n"
                                 "Q2,Deal,  \"20\"  ,\"two\nlines\",commit\r\n"
                                 "Q3,Lead,3,,\r\n";
        // "1,5" is not a number: check that first, then read a fixed version
        check_csv_error(text, 2, 3, {"column 'amount'", "expected a number", "'1,5'"});
        std::string fixed = text;
        fixed.replace(fixed.find("\"1,5\""), 5, "\"15\"");
        const book b = read(fixed);
        REQUIRE(b.size() == 3);
        CHECK(b.ids()[0] == "Q,1");
        CHECK(b.amounts()[0] == 15.0);
        CHECK(b.at(0).owner == "Smith, John");
        CHECK(b.at(0).category == "say \"hi\"");
        CHECK(b.at(1).owner == "two\nlines");
        CHECK(b.amounts()[1] == 20.0);
        CHECK(b.at(2).owner.empty());
        // line numbers keep counting through the blank line and the two-line field
        check_csv_error(fixed + "Q4,Nowhere,1,,\r\n", 7, 2, {"unknown stage 'Nowhere'"});
    }

    SUBCASE("optional columns: owner, category, currency, probability") {
        const book b = read("id,stage,amount,owner,forecast_category,currency,win_probability\n"
                            "1,Lead,10,ann,commit,USD,0.9\n"
                            "2,Demo,20,bob,best case,EUR,\n"
                            "3,Deal,30,ann,commit,USD,0\n");
        REQUIRE(b.size() == 3);
        CHECK(b.probability_overrides()[0] == 0.9);
        CHECK(std::isnan(b.probability_overrides()[1]));
        CHECK(b.probability_overrides()[2] == 0.0);
        CHECK(b.owner_names().size() == 2);
        CHECK(b.owners()[0] == b.owners()[2]);
        CHECK(b.owner_names()[b.owners()[1]] == "bob");
        CHECK(b.category_names()[b.categories()[1]] == "best case");
        CHECK(b.currency_names()[b.currencies()[1]] == "EUR");
        const auto d = b.at(0);
        CHECK(d.id == "1");
        CHECK(d.stage == "Lead");
        CHECK(d.owner == "ann");
        CHECK(d.category == "commit");
        CHECK(d.currency == "USD");
        REQUIRE(d.probability.has_value());
        CHECK(*d.probability == 0.9);
        CHECK_FALSE(b.at(1).probability.has_value());
    }

    SUBCASE("entry date + as-of date -> age in model time units") {
        book_csv_options opt;
        opt.as_of = "2026-11-22";
        const std::string text = "id,stage,amount,entered\n"
                                 "1,Lead,10,2026-11-15\n"
                                 "2,Demo,10,2026-11-22\n"
                                 "3,Deal,10,2026-11-21T12:00:00Z\n"
                                 "4,Deal,10,2026-11-21T12:00+02:00\n"
                                 "5,Deal,10,2025-11-22\n";
        const book b = read(text, opt);
        CHECK(b.ages()[0] == 7.0);
        CHECK(b.ages()[1] == 0.0);
        CHECK(b.ages()[2] == doctest::Approx(0.5).epsilon(1e-12));
        CHECK(b.ages()[3] == doctest::Approx(0.5 + 2.0 / 24).epsilon(1e-12)); // 10:00 UTC
        CHECK(b.ages()[4] == 365.0);
        opt.days_per_unit = 7.0; // weeks
        const book w = read(text, opt);
        CHECK(w.ages()[0] == 1.0);
        CHECK(w.ages()[4] == doctest::Approx(365.0 / 7).epsilon(1e-15));
        // an age column wins over the entry date
        const book a = read("id,stage,amount,entered,age\n1,Lead,10,2026-11-15,2.5\n", opt);
        CHECK(a.ages()[0] == 2.5);
        // ISO date parsing details
        CHECK(pipecast::detail::parse_iso8601("1970-01-02").value() == 1.0);
        CHECK(pipecast::detail::parse_iso8601("2000-03-01").value() - pipecast::detail::parse_iso8601("2000-02-28").value() == 2.0);
        CHECK_FALSE(pipecast::detail::parse_iso8601("2026-02-30").has_value());
        CHECK_FALSE(pipecast::detail::parse_iso8601("2026-1-5").has_value());
        CHECK_FALSE(pipecast::detail::parse_iso8601("2026-01-05T25:00").has_value());
    }

    SUBCASE("b2b6_open_deals.csv loads 10,000 deals") {
        const auto m = pipecast::load_model(PIPECAST_SHARED_DIR "/scenarios/b2b6.json");
        const std::string path = PIPECAST_SHARED_DIR "/scenarios/b2b6_open_deals.csv";
        const book b = pipecast::load_book_csv(path, m.graph);
        REQUIRE(b.size() == 10000);
        CHECK(b.ids()[0] == "D013666");
        CHECK(b.stages()[0] == 4); // Negotiation
        CHECK(b.amounts()[0] == 65928.96);
        CHECK(b.ages()[0] == 32.3241);
        // totals against an independent line-by-line read of the file
        std::ifstream in(path);
        std::string line;
        std::getline(in, line);
        double total = 0.0, total_age = 0.0;
        std::size_t rows = 0;
        while (std::getline(in, line)) {
            if (line.empty()) continue;
            const auto c1 = line.find(','), c2 = line.find(',', c1 + 1), c3 = line.find(',', c2 + 1);
            total += std::stod(line.substr(c2 + 1, c3 - c2 - 1));
            total_age += std::stod(line.substr(c3 + 1));
            ++rows;
        }
        CHECK(rows == 10000);
        double sum = 0.0, sum_age = 0.0;
        for (std::size_t i = 0; i < b.size(); ++i) {
            sum += b.amounts()[i];
            sum_age += b.ages()[i];
        }
        CHECK(sum == doctest::Approx(total).epsilon(1e-12));
        CHECK(sum_age == doctest::Approx(total_age).epsilon(1e-12));
        CHECK_THROWS_AS((void)pipecast::load_book_csv("/nonexistent/deals.csv", m.graph), pipecast::error);
    }

    SUBCASE("header-only and empty input; whitespace-only lines are blank") {
        CHECK(read("id,stage,amount\n").empty());
        CHECK(read("id,stage,amount\n  \t \nA,Lead,1\n   \n").size() == 1);
        check_csv_error("id,stage,amount\n  \nA,Leed,1\n", 3, 2, {"unknown stage"});
        check_csv_error("", 0, 0, {"empty file"});
    }

    SUBCASE("every bad-CSV case: parse_error with line and column") {
        // missing required column: header line, no column to point at
        check_csv_error("id,amount\n1,10\n", 1, 0, {"missing required column 'stage'"});
        check_csv_error("stage,amount\nLead,10\n", 1, 0, {"missing required column 'id'"});
        check_csv_error("id,stage\n1,Lead\n", 1, 0, {"missing required column 'amount'"});
        // short row: the column of the first missing field
        check_csv_error("id,stage,amount,age\n1,Lead,10,1\n2,Lead\n", 3, 3, {"expected at least 4 fields, got 2"});
        // empty id
        check_csv_error("stage,id,amount\nLead,  ,10\n", 2, 2, {"column 'id'", "empty deal id"});
        // duplicate id
        check_csv_error("id,stage,amount\nA,Lead,1\nB,Lead,1\nA,Demo,2\n", 4, 1,
                        {"duplicate deal id 'A'", "first on line 2"});
        // unknown stage, outcome stage
        check_csv_error("id,stage,amount\nA,Leed,1\n", 2, 2, {"column 'stage'", "unknown stage 'Leed'"});
        check_csv_error("id,stage,amount\nA,Won,1\n", 2, 2, {"stage 'Won' is an outcome"});
        // bad numbers
        check_csv_error("id,stage,amount\nA,Lead,12x\n", 2, 3, {"column 'amount'", "expected a number, got '12x'"});
        check_csv_error("id,stage,amount\nA,Lead,nan\n", 2, 3, {"expected a number"});
        check_csv_error("id,stage,amount\nA,Lead,inf\n", 2, 3, {"expected a number"});
        check_csv_error("id,stage,amount\nA,Lead,\n", 2, 3, {"empty amount"});
        check_csv_error("id,stage,amount,age\nA,Lead,1,two\n", 2, 4, {"column 'age'", "expected a number"});
        check_csv_error("id,stage,amount,age\nA,Lead,1,\n", 2, 4, {"empty age"});
        // negative amount and age
        check_csv_error("id,stage,amount\nA,Lead,-5\n", 2, 3, {"negative amount, got '-5'"});
        check_csv_error("id,stage,amount,age\nA,Lead,5,-0.5\n", 2, 4, {"column 'age'", "negative age -0.5"});
        // bad dates, entry after as-of, no as-of
        book_csv_options opt;
        opt.as_of = "2026-11-22";
        check_csv_error("id,stage,amount,entered\nA,Lead,5,2026-13-01\n", 2, 4,
                        {"column 'entered'", "not a valid date", "'2026-13-01'"}, opt);
        check_csv_error("id,stage,amount,entered\nA,Lead,5,yesterday\n", 2, 4, {"ISO-8601", "'yesterday'"}, opt);
        check_csv_error("id,stage,amount,entered\nA,Lead,5,12\n", 2, 4, {"ISO-8601", "'12'"}, opt);
        check_csv_error("id,stage,amount,entered\nA,Lead,5,\n", 2, 4, {"empty entry date"}, opt);
        check_csv_error("id,stage,amount,entered\nA,Lead,5,2026-11-23\n", 2, 4,
                        {"entry date is after the as-of date 2026-11-22"}, opt);
        check_csv_error("id,stage,amount,entered\nA,Lead,5,2026-11-01\n", 1, 4, {"needs an as-of date"});
        // probability override outside [0, 1]
        check_csv_error("id,stage,amount,probability\nA,Lead,5,1.5\n", 2, 4,
                        {"column 'probability'", "must be in [0, 1], got 1.5"});
        check_csv_error("id,stage,amount,probability\nA,Lead,5,-0.1\n", 2, 4, {"got -0.1"});
        // unterminated quote (the record starts on line 3), text after a closing quote
        check_csv_error("id,stage,amount\nA,Lead,5\nB,\"Lead,5\n", 3, 2, {"unterminated quoted field"});
        check_csv_error("id,stage,amount\nA,\"Lead\"x,5\n", 2, 2, {"text after a closing quote"});
    }

    SUBCASE("bad options throw argument_error") {
        book_csv_options opt;
        opt.as_of = "22/11/2026";
        check_throws<pipecast::argument_error>([&] { (void)read("id,stage,amount\n", opt); }, {"as-of date '22/11/2026'"});
        opt.as_of.reset();
        opt.days_per_unit = 0.0;
        check_throws<pipecast::argument_error>([&] { (void)read("id,stage,amount\n", opt); }, {"days_per_unit"});
    }

    SUBCASE("book::add validation") {
        const auto g = funnel();
        book b(g);
        using pipecast::argument_error;
        b.add(pipecast::deal{"ok", "Demo", 10.0, 1.0, "ann", "commit", "USD", 0.4});
        CHECK(b.size() == 1);
        CHECK(b.at(0).probability.value() == 0.4);
        check_throws<argument_error>([&] { b.add(pipecast::deal{"x", "Nope", 1.0, 0.0, "", "", "", {}}); },
                                     {"deal 'x'", "stage 'Nope'"});
        check_throws<argument_error>([&] { b.add(pipecast::deal{"x", "Won", 1.0, 0.0, "", "", "", {}}); },
                                     {"deal 'x'", "stage 'Won'", "not an open stage"});
        for (double bad : {-1.0, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
            check_throws<argument_error>([&] { b.add(pipecast::deal{"x", "Lead", bad, 0.0, "", "", "", {}}); },
                                         {"deal 'x'", "amount"});
            check_throws<argument_error>([&] { b.add(pipecast::deal{"x", "Lead", 1.0, bad, "", "", "", {}}); },
                                         {"deal 'x'", "age"});
        }
        for (double bad : {-0.1, 1.1, std::numeric_limits<double>::quiet_NaN()})
            check_throws<argument_error>([&] { b.add(pipecast::deal{"x", "Lead", 1.0, 0.0, "", "", "", bad}); },
                                         {"deal 'x'", "probability override"});
        check_throws<argument_error>([&] { b.add("y", 3, 1.0, 0.0); }, {"deal 'y'", "stage index 3"});
        CHECK(b.size() == 1); // nothing half-added
        check_throws<argument_error>([&] { (void)b.at(1); }, {"book::at", "index 1"});
        const auto other = pipecast::linear_funnel({"A", "B", "C"}, {0.2, 0.5, 0.8}, std::vector<double>{1.0, 1.0, 1.0});
        CHECK_FALSE(b.compatible_with(other));
    }
}

TEST_CASE("book_io: CRM exports") {
    SUBCASE("a Chinese export's column names without --map: 商机编号, 阶段, 金额, 停留天数, 负责人") {
        const book b = read("商机编号,商机名称,阶段,金额,停留天数,负责人\n"
                            "SJ-001,华东项目,Demo,25000,12,张伟\n"
                            "SJ-002,华南项目,Lead,1200,3,李娜\n");
        REQUIRE(b.size() == 2);
        CHECK(b.ids()[0] == "SJ-001");
        CHECK(b.amounts()[0] == 25000.0);
        CHECK(b.ages()[1] == 3.0);
        CHECK(b.stage_names()[b.stages()[0]] == "Demo");
        CHECK(b.owner_names()[b.owners()[1]] == "李娜");
    }
    SUBCASE("Salesforce Opportunity report: Probability (%), LastStageChangeDate, owner; Age not used; closed deals left out") {
        book_csv_options opt;
        opt.as_of = "2026-11-22";
        const book b = read("\"Opportunity ID\",\"Opportunity Name\",\"Stage\",\"Amount\",\"Probability (%)\",\"Close Date\","
                            "\"LastStageChangeDate\",\"Age\",\"Opportunity Owner\",\"Forecast Category\"\n"
                            "\"0061\",\"Big\",\"Demo\",\"$25,000.00\",\"40\",\"2026-12-31\",\"11/12/2026\",\"100\",\"Ann\",\"Pipeline\"\n"
                            "\"0063\",\"Done\",\"Closed Won\",\"900\",\"100\",\"2026-10-31\",\"2026-10-31\",\"50\",\"Bob\",\"Closed\"\n"
                            "\"0062\",\"Small\",\"Lead\",\"1200\",\"\",\"2026-12-31\",\"2026-11-22\",\"5\",\"Bob\",\"Pipeline\"\n",
                            opt);
        REQUIRE(b.size() == 2);
        CHECK(b.amounts()[0] == 25000.0);
        CHECK(b.ages()[0] == 10.0);
        CHECK(b.probability_overrides()[0] == doctest::Approx(0.4));
        CHECK(std::isnan(b.probability_overrides()[1]));
        CHECK(b.owner_names()[b.owners()[1]] == "Bob");
        CHECK(b.currency_names()[b.currencies()[0]] == "USD");
    }
    SUBCASE("HubSpot deals export: the current stage's Date entered column gives the age") {
        book_csv_options opt;
        opt.as_of = "2026-11-22";
        const book b = read("Record ID,Deal Name,Deal Stage,Amount,Deal owner,\"Date entered \"\"Lead (Sales Pipeline)\"\"\","
                            "\"Date entered \"\"Demo (Sales Pipeline)\"\"\"\n"
                            "1,A,Demo,100,ann,2026-11-01 10:00,2026-11-20 00:00\n"
                            "2,B,Lead,50,bob,2026-11-21 12:00,\n",
                            opt);
        REQUIRE(b.size() == 2);
        CHECK(b.ages()[0] == doctest::Approx(2.0));
        CHECK(b.ages()[1] == doctest::Approx(0.5));
    }
    SUBCASE("HubSpot: a row that ends before its stage's Date entered column is an error at the row") {
        // fuzz_book_csv finding (heap-use-after-free: the field past the row's end was read)
        book_csv_options opt;
        opt.as_of = "2026-11-22";
        check_csv_error("Record ID,Deal Stage,Amount,\"Date entered \"\"Lead (Sales Pipeline)\"\"\","
                        "\"Date entered \"\"Demo (Sales Pipeline)\"\"\"\n"
                        "1,Lead,100,2026-11-01 10:00,2026-11-20 00:00\n"
                        "2,Demo,100,2026-11-01 10:00\n",
                        3, 5, {"expected 5 fields", "got 4"}, opt);
    }
    SUBCASE("--map, --stage-map, semicolons, decimal comma, a Chinese header") {
        book_csv_options opt;
        opt.columns = {{"id", "商机编号"}, {"stage", "阶段"}, {"amount", "金额"}};
        opt.stage_map = {{"演示", "Demo"}};
        opt.decimal_comma = true;
        const book b = read("商机编号;阶段;金额\nA;演示;¥1.234,50\n", opt);
        REQUIRE(b.size() == 1);
        CHECK(b.amounts()[0] == 1234.5);
        CHECK(b.currency_names()[b.currencies()[0]] == "CNY");
        check_csv_error("id,stage,amount\nA,Lead,1,200\n", 2, 4, {"the row has 4 fields, the header 3"});
        check_csv_error("id,stage,amount\nA,Lead,\"1,2\"\n", 2, 3, {"misplaced thousands separator"});
    }
}

TEST_CASE("book_io: hostile input (issue 11)") {
    SUBCASE("large amounts read exactly; a sum that overflows is an error at its row") {
        const book b = read("id,stage,amount\nA,Lead,1e19\nB,Demo,\"9,000,000,000,000,000,000,000\"\n");
        CHECK(b.amounts()[0] == 1e19);
        CHECK(b.amounts()[1] == 9e21);
        check_csv_error("id,stage,amount\nA,Lead,1e308\nB,Lead,1e308\n", 3, 3, {"the amounts' sum overflows at '1e308'"});
        check_csv_error("id,stage,amount\nA,Lead,1e400\n", 2, 3, {"expected a number", "not NaN or infinity"});
        check_csv_error("id,stage,amount\nA,Lead,-0.0001\n", 2, 3, {"negative amount"});
        check_csv_error("id,stage,amount\nA,Lead,NaN\n", 2, 3, {"not NaN or infinity"});
        check_csv_error("id,stage,amount\nA,Lead,-inf\n", 2, 3, {"not NaN or infinity"});
    }
    SUBCASE("an amount converted at an exchange rate that overflows: an error at its row, not a bare argument_error") {
        book_csv_options opt;
        opt.fx = {{"EUR", 1e10, std::numeric_limits<double>::quiet_NaN()}};
        check_csv_error("id,stage,amount,currency\nA,Lead,1e300,EUR\n", 2, 3,
                        {"the amount 1e+300 converted at the rate 1e+10 overflows"}, opt);
        check_csv_error("id,stage,amount,currency\nA,Lead,1e298,EUR\nB,Lead,1e298,EUR\n", 3, 3,
                        {"the amounts' sum overflows"}, opt);
    }
    SUBCASE("ages beyond 1e15 time units are errors (durations and sums of them overflow)") {
        check_csv_error("id,stage,amount,age\nA,Lead,1,1e308\n", 2, 4, {"column 'age'", "age 1e+308 is out of range"});
        CHECK(read("id,stage,amount,age\nA,Lead,1,1e15\n").ages()[0] == 1e15);
    }
    SUBCASE("binary junk, NUL bytes, UTF-16, very long fields, an empty file") {
        check_csv_error(std::string("id,stage,amount\nA,Le\0ad,1\n", 26), 2, 2, {"NUL byte"});
        check_csv_error("\xFF\xFEi\0d\0", 1, 1, {"UTF-16"});
        check_csv_error("id,stage,amount\nA,Lead\xC3,1\n", 2, 2, {"invalid UTF-8"});
        check_csv_error("id,stage,amount\nA,Lead," + std::string(2u << 20, '9') + "\n", 2, 3, {"field longer than"});
        check_csv_error("", 0, 0, {"empty file"});
        check_csv_error("\xEF\xBB\xBF\n\n", 0, 0, {"empty file"});
        const book b = read("\xEF\xBB\xBFid,stage,amount\r\nA,Lead,1\r\n");
        CHECK(b.size() == 1);
    }
}

} // namespace unit_book_io
