// results_json.hpp: the JSON of the results is the library's. The documents give exactly what
// `pipecast <command> --json` prints (the CLI is run here, beside the library call on the
// same inputs, and the two texts compared key for key and in order); the hooks of a result
// alone hold its numbers; ordered_json and json give the same values.
#include <pipecast/io/results_json.hpp>
#include <pipecast/pipecast.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>

// One namespace a file: the unit tests are compiled together (tests/CMakeLists.txt).
namespace unit_results_json {

namespace {

using ojson = nlohmann::ordered_json;

const std::string source_dir = PIPECAST_SOURCE_DIR;
const std::string shared_dir = PIPECAST_SHARED_DIR;
const std::string saas_model = source_dir + "/examples/data/saas.json";
const std::string saas_deals = source_dir + "/examples/data/saas_deals.csv";
const std::string crm4_history = source_dir + "/examples/data/crm4_sample_history.csv";

/// The CLI of this build: <build>/examples/pipecast beside <build>/tests/unit_results_json.
std::filesystem::path cli_path() {
    const auto self = std::filesystem::read_symlink("/proc/self/exe");
    return self.parent_path().parent_path() / "examples" / "pipecast";
}

/// stdout of `pipecast <args>` (stderr discarded); REQUIREs exit status 0.
std::string run_cli(const std::string& args) {
    const std::string cmd = cli_path().string() + " " + args + " 2>/dev/null";
    FILE* f = popen(cmd.c_str(), "r");
    REQUIRE(f != nullptr);
    std::string out;
    std::array<char, 4096> buf{};
    std::size_t n = 0;
    while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) out.append(buf.data(), n);
    const int status = pclose(f);
    INFO("pipecast " << args);
    REQUIRE(status == 0);
    return out;
}

/// Whether the CLI was built (PIPECAST_BUILD_EXAMPLES); the comparisons need it.
bool have_cli() {
    const bool ok = std::filesystem::exists(cli_path());
    if (!ok) MESSAGE("the CLI is not built (" << cli_path().string() << "): the comparison with its --json is skipped");
    return ok;
}

pipecast::book load_book(const pipecast::model& m, const std::string& path) {
    pipecast::book_csv_options o;
    o.days_per_unit = pipecast::days_per_unit(m.time_unit);
    return pipecast::load_book_csv(path, m.graph, o);
}

} // namespace

TEST_CASE("forecast_document is the CLI's forecast --json, keys in order") {
    const pipecast::model m = pipecast::load_model(saas_model);
    const pipecast::book b = load_book(m, saas_deals);
    const auto f = pipecast::weighted_forecast(m.graph, b, pipecast::analyse(m.graph));
    const auto aa = pipecast::age_aware_forecast(m.graph, b, {});
    const auto q = pipecast::period_forecast(m.graph, b, 90.0, {});
    const ojson plain = pipecast::forecast_document{m, f, aa};
    const ojson within = pipecast::forecast_document{m, f, aa, &q};
    // The result alone carries the same numbers.
    const ojson alone = f;
    CHECK(alone["weighted_total"] == plain["weighted_total"]);
    CHECK(alone["by_stage"].size() == m.graph.open_count());
    const ojson qa = q;
    CHECK(qa["expected"] == within["within_horizon"]["expected"]);
    CHECK(within["within_horizon"]["expected"].get<double>() < plain["weighted_total"].get<double>());
    if (!have_cli()) return;
    CHECK(run_cli("forecast --model " + saas_model + " --deals " + saas_deals + " --json") == plain.dump(2) + "\n");
    CHECK(run_cli("forecast --model " + saas_model + " --deals " + saas_deals + " --horizon 90 --json") ==
          within.dump(2) + "\n");
}

TEST_CASE("funnel_document is the CLI's funnel --json") {
    const pipecast::model m = pipecast::load_model(saas_model);
    pipecast::funnel_target t;
    t.quota = 1500000;
    t.period = 90;
    const auto f = pipecast::ideal_funnel(m, t);
    const ojson j = pipecast::funnel_document{m, f};
    CHECK(j["quota"] == 1500000.0);
    CHECK(j["stages"].size() == f.stages.size());
    if (!have_cli()) return;
    CHECK(run_cli("funnel --model " + saas_model + " --quota 1500000 --period 90 --json") == j.dump(2) + "\n");
}

TEST_CASE("fit_document is the CLI's fit --json (less the file's name and skipped rows)") {
    pipecast::import_options io;
    io.history.recognise_outcomes = true;
    io.history.days_per_unit = 1.0;
    const pipecast::visit_log log = pipecast::import_history(crm4_history, io).log;
    REQUIRE(log.dates);
    pipecast::fit_options fo;
    fo.kind = pipecast::model_kind::classic;
    const pipecast::history_fit fit = pipecast::fit_history(log, fo);
    const ojson j = pipecast::fit_document{fit, log.dates};
    CHECK(j["deals"] == fit.deals);
    CHECK(j["start"].get<std::string>().substr(0, 4) == "2023"); // a date: the log is dated
    const ojson times = fit;                                      // alone: start as a time
    CHECK(times["start"].get<std::string>().substr(0, 4) != "2023");
    CHECK(times["stages"] == j["stages"]);
    if (!have_cli()) return;
    ojson cli = ojson::parse(run_cli("fit --history " + crm4_history +
                                     " --model-kind classic --min-dwell off --drop-after-the-fact off --json"));
    CHECK(cli["source"] == crm4_history);
    cli.erase("source");
    cli.erase("skipped");
    CHECK(cli.dump(2) == j.dump(2));
}

TEST_CASE("simulation_document and exact_document are the CLI's simulate --json") {
    const pipecast::model m = pipecast::load_model(saas_model);
    const pipecast::book b = load_book(m, saas_deals);
    pipecast::simulation_options o;
    o.paths = 500;
    o.horizon = 90;
    o.threads = 1;
    o.quotas = {500000, 900000};
    o.sub_period_ends = pipecast::sub_periods(90, 3);
    if (m.overdispersed()) o.stage_correlation = m.overdispersion_by_stage();
    pipecast::correlation_used c;
    if (m.overdispersed()) {
        c.source = "model";
        c.by_stage = m.overdispersion_by_stage();
        for (double s : c.by_stage) c.sigma = std::max(c.sigma, s);
    }
    o.correlation = c.sigma;
    const auto r = pipecast::simulate(m, b, o);
    ojson j = pipecast::simulation_document{m, r, c, 1};
    CHECK(j["paths"] == 500);
    CHECK(j["won_value"]["mean"] == j["mean"]);
    CHECK(j["quotas"].size() == 2);
    CHECK(j["histogram"]["counts"].size() == pipecast::simulation_options{}.histogram_bins);
    const ojson alone = r;
    CHECK(alone["won_value"] == j["won_value"]);
    CHECK(alone["sub_periods"] == j["sub_periods"]);

    pipecast::simulation_options e = o;
    e.sub_period_ends = {};
    const auto x = pipecast::exact_distribution(m, b, e);
    const ojson ej = pipecast::exact_document{m, x, c, 1, 500};
    CHECK(ej["method"] == "exact");
    CHECK(ej["stderr"] == 0.0);
    if (!have_cli()) return;
    // The run's timings differ between runs: compared without them.
    auto timeless = [](ojson v) {
        v.erase("elapsed_seconds");
        v.erase("deal_paths_per_second");
        return v.dump(2);
    };
    const std::string args = "simulate --model " + saas_model + " --deals " + saas_deals +
                             " --horizon 90 --paths 500 --threads 1 --quota 500000 --quota 900000 --sub-periods 3 --json";
    CHECK(timeless(ojson::parse(run_cli(args))) == timeless(j));
    const std::string exact = "simulate --model " + saas_model + " --deals " + saas_deals +
                              " --horizon 90 --paths 500 --quota 500000 --quota 900000 --method exact --json";
    CHECK(timeless(ojson::parse(run_cli(exact))) == timeless(ej));
}

TEST_CASE("kpi_report, calendar and sweep hooks hold the result's numbers") {
    pipecast::import_options io;
    io.history.recognise_outcomes = true;
    const pipecast::visit_log log = pipecast::import_history(crm4_history, io).log;
    pipecast::fit_options fo;
    fo.kind = pipecast::model_kind::classic;
    const auto fit = pipecast::fit_history(log, fo);
    const auto k = pipecast::compute_kpis(log, fit, {}, nullptr);
    const ojson kj = k;
    CHECK(kj["deals"] == k.deals);
    CHECK(kj["won"] == k.won);
    CHECK(kj["stages"].size() == k.stages.size());
    const nlohmann::json unordered = k; // any nlohmann JSON type
    CHECK(unordered["won"] == k.won);

    pipecast::scenario s;
    s.dwell_scale = 0.8;
    const ojson sj = s;
    CHECK(sj.size() == 1);
    CHECK(sj["dwell_scale"] == 0.8);
}

TEST_CASE("per_deal_document: per_deal_csv's columns as keys, expected_close as a date") {
    const pipecast::model m = pipecast::load_model(saas_model);
    const pipecast::book b = load_book(m, saas_deals);
    pipecast::age_aware_options ao;
    ao.per_deal = true;
    const auto aa = pipecast::age_aware_forecast(m.graph, b, ao);
    std::vector<char> stale(b.size(), 0);
    std::vector<double> close(b.size(), std::numeric_limits<double>::quiet_NaN());
    close[0] = 20000.5; // 2024-10-04 12:00 in days since 1970-01-01
    const auto rows = pipecast::deal_forecasts(m.graph, b, 0.0, aa.deal_win_probability, aa.deal_win_probability, close, stale);
    const ojson j = pipecast::per_deal_document{rows, true, 1.0};
    REQUIRE(j.size() == b.size());
    // The keys are the CSV's header, in its order.
    const std::string csv = pipecast::per_deal_csv(rows, true, 1.0);
    std::string keys;
    for (const auto& item : j[0].items()) {
        if (!keys.empty()) keys += ',';
        keys += item.key();
    }
    CHECK(keys == csv.substr(0, csv.find('\n')));
    CHECK(j[0]["expected_close"].get<std::string>().substr(0, 10) == "2024-10-04");
    CHECK(j[1]["expected_close"].is_null());
    CHECK(j[1]["p_win"] == rows[1].p_win);
    const ojson alone = rows[0]; // a row alone: expected_close as a time
    CHECK(alone["expected_close"] == 20000.5);
}

} // namespace unit_results_json
