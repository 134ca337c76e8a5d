// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file pipecast.hpp
/// @brief Umbrella header: includes the whole library.

#include <pipecast/version.hpp>
#include <pipecast/error.hpp>
#include <pipecast/dwell.hpp>
#include <pipecast/stage_graph.hpp>
#include <pipecast/model.hpp>
#include <pipecast/model_io.hpp>
#include <pipecast/book.hpp>
#include <pipecast/book_io.hpp>
#include <pipecast/analytics.hpp>
#include <pipecast/first_passage.hpp>
#include <pipecast/forecast.hpp>
#include <pipecast/funnel.hpp>
#include <pipecast/variates.hpp>
#include <pipecast/simulation.hpp>
#include <pipecast/sweep.hpp>
#include <pipecast/exact_distribution.hpp>
#include <pipecast/history.hpp>
#include <pipecast/crm_import.hpp>
#include <pipecast/estimation.hpp>
#include <pipecast/kpi.hpp>
#include <pipecast/history_view.hpp>
#include <pipecast/landmark.hpp>
#include <pipecast/nowcast.hpp>
#include <pipecast/backtest.hpp>
#include <pipecast/report.hpp>
#include <pipecast/svg.hpp>
#include <pipecast/results_json.hpp>
