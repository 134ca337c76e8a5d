// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file fwd.hpp
/// @brief Forward declarations of pipecast's main types, for headers of an embedder that
/// name them without needing their definitions (and without compiling Eigen or Boost.Math).
///
/// Where each is defined:
/// - model/: dwell_distribution (dwell.hpp), stage_graph (stage_graph.hpp), model,
///   deal_size_distribution, arrival_process (model.hpp);
/// - data/: deal, book (book.hpp), visit_log (history.hpp);
/// - forecast/: weighted_forecast_result, period_forecast_result, age_aware_forecast_result
///   (results.hpp);
/// - funnel/: funnel_target, ideal_funnel_result (funnel.hpp);
/// - simulation/: simulation_options, simulation_result, outcome_summary (options.hpp),
///   simulation_engine (simulation.hpp), exact_result (exact_distribution.hpp);
/// - estimation/: fit_options, history_fit (estimates.hpp), backtest_result (backtest.hpp);
/// - kpi_report (kpi.hpp), pipeline_report (report/report.hpp).

namespace pipecast {

class dwell_distribution;
class stage_graph;
class deal_size_distribution;
struct arrival_process;
struct model;

struct deal;
class book;
struct visit_log;

struct weighted_forecast_result;
struct period_forecast_result;
struct age_aware_forecast_result;

struct funnel_target;
struct ideal_funnel_result;

struct simulation_options;
struct simulation_result;
struct outcome_summary;
class simulation_engine;
struct exact_result;

struct fit_options;
struct history_fit;
struct backtest_result;

struct kpi_report;
struct pipeline_report;

} // namespace pipecast
