// pipecast-sweep-mpi — `pipecast sweep` split across MPI ranks (built with
// -DPIPECAST_WITH_MPI=ON; docs/scaling.md):
//
//   mpirun -np R pipecast-sweep-mpi --model M.json --deals D.csv --scenarios S.json --horizon H
//          [--paths N] [--seed S] [--quota Q]... [--threads T] [--no-arrivals] [--json]
//
// Same options and same report as `pipecast sweep`; the scenarios' numbers are bit-identical
// to the single-process run for the same seed at any rank count.
//
// How: every rank reads the model, the book and the scenarios and checks every scenario
// (pipecast::sweep's constructor), so that bad input fails on every rank alike before any
// work; the ranks agree on that with one MPI_Allreduce. The work items (scenario, path) are
// split into R contiguous ranges as even as possible (pipecast::sweep_share: sizes differ by
// at most one path; a scenario may be cut between ranks); each rank runs its pieces (one
// prepared engine per scenario piece, --threads workers) and sends each piece's per-path won
// values and counts (2 doubles a path) to rank 0, which receives them in rank and piece
// order, places them by path and computes every summary there (pipecast::sweep::combine):
// an ordered reduction, so the result does not depend on R or on the split.
#include "../cli/sweep_command.hpp"

#include <mpi.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace {

/// Whether any rank failed, and whether rank 0 did (two collective calls, every rank).
struct failures {
    bool any = false, rank0 = false;
};
failures agree(bool failed) {
    int mine = failed ? 1 : 0, any = 0, first = mine;
    MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Bcast(&first, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return {any != 0, first != 0};
}

/// Prints an error once: bad input fails every rank alike, so rank 0 prints its message and
/// the others keep quiet; a rank that failed alone (rank 0 did not) prints its own, with its
/// rank.
void report_error(int rank, const std::string& message, bool failed_here, bool rank0_failed) {
    if (rank == 0 && failed_here) std::cerr << "pipecast: error: " << message << '\n';
    else if (failed_here && !rank0_failed) std::cerr << "pipecast: error: rank " << rank << ": " << message << '\n';
}

constexpr int tag_values = 1, tag_capped = 2;

} // namespace

int main(int argc, char** argv) {
    MPI_Init(&argc, &argv);
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);

    CLI::App app{"pipecast-sweep-mpi: `pipecast sweep` split across MPI ranks (bit-identical results)"};
    pipecast_sweep_cli::sweep_args a;
    pipecast_sweep_cli::add_sweep_options(&app, a);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // Every rank parses the same command line: all stop here alike; rank 0 prints.
        const int code = rank == 0 ? app.exit(e) : e.get_exit_code();
        MPI_Finalize();
        return code == 0 ? 0 : 1;
    }
    const auto start = std::chrono::steady_clock::now();

    // 1. Inputs, read and checked on every rank.
    std::optional<pipecast::model> m;
    std::optional<pipecast::book> b;
    std::unique_ptr<pipecast::sweep> sw;
    std::string problem;
    try {
        m = pipecast::load_model(a.model_path);
        b = pipecast::load_book_csv(a.deals_path, m->graph, pipecast_sweep_cli::book_options_of(a, *m));
        sw = std::make_unique<pipecast::sweep>(*m, *b, pipecast::load_scenarios(a.scenarios_path),
                                               pipecast_sweep_cli::options_of(a));
    } catch (const std::exception& e) {
        problem = e.what();
    }
    if (const failures f = agree(!problem.empty()); f.any) {
        report_error(rank, problem, !problem.empty(), f.rank0);
        MPI_Finalize();
        return 1;
    }

    // 2. This rank's pieces.
    const std::size_t scenarios = sw->size(), paths = a.paths;
    std::vector<pipecast::sweep_piece> pieces;
    try {
        for (const pipecast::sweep_work& w : pipecast::sweep_share(scenarios, paths, static_cast<std::size_t>(size),
                                                                   static_cast<std::size_t>(rank)))
            pieces.push_back(sw->run_piece(w));
    } catch (const std::exception& e) {
        problem = e.what();
    }
    if (const failures f = agree(!problem.empty()); f.any) {
        report_error(rank, problem, !problem.empty(), f.rank0);
        MPI_Finalize();
        return 1;
    }

    // 3. To rank 0: per piece, [values, counts, elapsed] as doubles and the capped count.
    if (rank != 0) {
        for (const pipecast::sweep_piece& p : pieces) {
            std::vector<double> buf(p.value);
            buf.insert(buf.end(), p.count.begin(), p.count.end());
            buf.push_back(p.elapsed_seconds);
            const std::uint64_t capped = p.capped_deal_paths;
            MPI_Send(buf.data(), static_cast<int>(buf.size()), MPI_DOUBLE, 0, tag_values, MPI_COMM_WORLD);
            MPI_Send(&capped, 1, MPI_UINT64_T, 0, tag_capped, MPI_COMM_WORLD);
        }
        MPI_Finalize();
        return 0;
    }
    for (int r = 1; r < size; ++r) {
        for (const pipecast::sweep_work& w :
             pipecast::sweep_share(scenarios, paths, static_cast<std::size_t>(size), static_cast<std::size_t>(r))) {
            const std::size_t n = w.last - w.first;
            std::vector<double> buf(2 * n + 1);
            std::uint64_t capped = 0;
            MPI_Recv(buf.data(), static_cast<int>(buf.size()), MPI_DOUBLE, r, tag_values, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            MPI_Recv(&capped, 1, MPI_UINT64_T, r, tag_capped, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            pipecast::sweep_piece p;
            p.scenario = w.scenario;
            p.first = w.first;
            p.last = w.last;
            p.value.assign(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
            p.count.assign(buf.begin() + static_cast<std::ptrdiff_t>(n), buf.begin() + static_cast<std::ptrdiff_t>(2 * n));
            p.elapsed_seconds = buf.back();
            p.capped_deal_paths = capped;
            pieces.push_back(std::move(p));
        }
    }
    int rc = 0;
    try {
        const pipecast::sweep_result res = sw->combine(pieces);
        pipecast_sweep_cli::run_info info;
        info.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        info.processes = size;
        info.threads = a.threads;
        pipecast_sweep_cli::report(std::cout, *sw, res, *m, a, info);
    } catch (const std::exception& e) {
        report_error(0, e.what(), true, true);
        rc = 1;
    }
    MPI_Finalize();
    return rc;
}
