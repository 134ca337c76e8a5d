// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file pipecast.hpp
/// @brief Umbrella header: includes the whole library. The layout (docs/design.md):
/// model/ the pipeline model and its exact analytics; data/ the book of open deals and the
/// deal history; io/ files in and out; forecast/, funnel/, simulation/, estimation/ the four
/// ways to answer the sales questions; report/ the pipeline report. A `detail/` folder holds
/// what a user does not call.

#include <pipecast/error.hpp>
#include <pipecast/fwd.hpp>
#include <pipecast/version.hpp>

#include <pipecast/model/analytics.hpp>
#include <pipecast/model/dwell.hpp>
#include <pipecast/model/first_passage.hpp>
#include <pipecast/model/model.hpp>
#include <pipecast/model/stage_graph.hpp>

#include <pipecast/data/book.hpp>
#include <pipecast/data/history.hpp>
#include <pipecast/data/history_view.hpp>

#include <pipecast/io/book_csv.hpp>
#include <pipecast/io/crm_import.hpp>
#include <pipecast/io/model_json.hpp>
#include <pipecast/io/results_json.hpp>

#include <pipecast/forecast/calendar.hpp>
#include <pipecast/forecast/forecast.hpp>
#include <pipecast/forecast/landmark.hpp>
#include <pipecast/forecast/nowcast.hpp>

#include <pipecast/funnel/funnel.hpp>

#include <pipecast/simulation/exact_distribution.hpp>
#include <pipecast/simulation/simulation.hpp>
#include <pipecast/simulation/sweep.hpp>

#include <pipecast/estimation/backtest.hpp>
#include <pipecast/estimation/estimation.hpp>

#include <pipecast/kpi.hpp>

#include <pipecast/report/report.hpp>
#include <pipecast/report/svg.hpp>
