// Tutorial 7: one model shared by the threads of a service.
// Models and books are immutable after construction, and a prepared simulation_engine builds
// its tables once; any number of threads may then read them at once. Here four worker
// threads answer four requests (horizon, seed) concurrently from one engine, and each answer
// is compared with a plain sequential simulate() call: runs are bit-identical whatever thread
// runs them and however many threads each uses.
#include <pipecast/io/book_csv.hpp>
#include <pipecast/io/model_json.hpp>
#include <pipecast/simulation/simulation.hpp>

#include <cstdio>
#include <thread>
#include <vector>

int main() {
    using namespace pipecast;
    const model m = load_model(PIPECAST_EXAMPLES_DIR "/data/saas.json");
    const book deals = load_book_csv(PIPECAST_EXAMPLES_DIR "/data/saas_deals.csv", m.graph);
    const simulation_engine engine(m, deals); // tables built once, shared read-only

    std::vector<simulation_options> requests(4);
    for (std::size_t i = 0; i < requests.size(); ++i) {
        requests[i].horizon = 30.0 * static_cast<double>(i + 1);
        requests[i].seed = 100 + i;
        requests[i].paths = 4000;
        requests[i].threads = 1; // one worker per request; the service runs them side by side
    }
    std::vector<simulation_result> answers(requests.size());
    {
        std::vector<std::jthread> workers;
        for (std::size_t i = 0; i < requests.size(); ++i)
            workers.emplace_back([&, i] { answers[i] = engine.run(requests[i]); });
    } // the jthreads join here

    std::size_t identical = 0;
    for (std::size_t i = 0; i < requests.size(); ++i) {
        simulation_options sequential = requests[i];
        sequential.threads = 2;
        const simulation_result r = simulate(m, deals, sequential);
        const bool same = r.won_value.mean == answers[i].won_value.mean &&
                          r.won_value.quantiles == answers[i].won_value.quantiles &&
                          r.deal_win_probability == answers[i].deal_win_probability;
        identical += same ? 1 : 0;
        std::printf("horizon %3.0f days, seed %llu: mean won %.0f, P50 %.0f (%s)\n", requests[i].horizon,
                    static_cast<unsigned long long>(requests[i].seed), answers[i].won_value.mean,
                    answers[i].won_value.quantiles[1], same ? "identical" : "DIFFERENT");
    }
    std::printf("%zu of %zu answers identical to the sequential runs\n", identical, requests.size());
}
