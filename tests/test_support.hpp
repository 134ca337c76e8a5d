// Helpers shared by the unit tests.
#pragma once

#include <pipecast/model/dwell.hpp>
#include <pipecast/model/stage_graph.hpp>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cstddef>
#include <fstream>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

namespace pipecast_test {

/// True in a build with AddressSanitizer or ThreadSanitizer (GCC's __SANITIZE_*__ macros,
/// clang's __has_feature), where the simulator runs several times slower.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool sanitized_build = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool sanitized_build = true;
#else
inline constexpr bool sanitized_build = false;
#endif
#else
inline constexpr bool sanitized_build = false;
#endif

/// The paths of a Monte Carlo comparison: `paths`, or an eighth of them in a sanitized build
/// (the same code paths run; a comparison whose tolerance comes from the standard error of
/// the paths it ran stays a 4-SE check, only a wider one).
constexpr std::size_t mc_paths(std::size_t paths) noexcept { return sanitized_build ? paths / 8 : paths; }

/// Checks that `f` throws `E` and that the message contains every fragment (so an error
/// names its item and value, not just that something failed).
template <class E, class F>
void check_throws(F&& f, std::initializer_list<const char*> fragments) {
    bool thrown = false;
    try {
        f();
    } catch (const E& e) {
        thrown = true;
        const std::string msg = e.what();
        for (const char* frag : fragments) {
            INFO("message: " << msg << "  expected fragment: " << frag);
            CHECK(msg.find(frag) != std::string::npos);
        }
    }
    CHECK(thrown);
}

/// The crm4 generator's spec (../shared/scenarios/crm4_truth.json "spec") as a branched
/// graph: a stage with stall s and edges {to, p, dwell} has branches (1 − s)·p each plus a
/// stalled branch {Lost, s, exponential mean 300}. With `classic_qualification`, the first
/// stage is a classic one instead (gamma dwell shape 2 mean 15; Discovery 0.5, Lost 0.5):
/// a mixed graph, whose classic row enters a branched stage.
inline pipecast::stage_graph crm4_spec_graph(bool classic_qualification = false) {
    using namespace pipecast;
    std::ifstream in(PIPECAST_SHARED_DIR "/scenarios/crm4_truth.json");
    const nlohmann::json spec = nlohmann::json::parse(in).at("spec");
    auto dwell = [](const nlohmann::json& d) {
        const std::string f = d.at("dist");
        if (f == "gamma") return dwell_distribution::gamma(d.at("shape"), d.at("mean"));
        if (f == "lognormal") return dwell_distribution::lognormal(d.at("mean"), d.at("sd"));
        return dwell_distribution::exponential(d.at("mean"));
    };
    const dwell_distribution cleanup = dwell(spec.at("cleanup"));
    std::vector<open_stage> stages;
    transition_rows rows;
    for (const auto& s : spec.at("stages")) {
        const std::string name = s.at("name");
        if (classic_qualification && name == "Qualification") {
            stages.push_back({name, dwell_distribution::gamma(2.0, 15.0)});
            rows[name] = {{"Discovery", 0.5}, {"Lost", 0.5}};
            continue;
        }
        const double stall = s.at("stall");
        std::vector<stage_branch> br;
        for (const auto& e : s.at("edges"))
            br.push_back({e.at("to"), (1.0 - stall) * e.at("p").get<double>(), dwell(e.at("dwell")), false});
        br.push_back({"Lost", stall, cleanup, true});
        stages.push_back({name, dwell_distribution::exponential(1.0), br});
    }
    return stage_graph::from_rows(std::move(stages), {{"Won", true}, {"Lost", false}}, rows);
}

} // namespace pipecast_test
