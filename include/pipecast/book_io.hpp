// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file book_io.hpp
/// @brief Reading a book of open deals from CSV, columns found by header name.
///
/// Columns (any order, case-insensitive, extra columns ignored):
///   id | deal_id            required
///   stage                   required, an open stage of the model
///   amount | value          required, >= 0
///   age | age_in_stage      time already in the stage, in the model's time unit
///   entered | stage_entered the date the deal entered its stage (needs an as-of date)
///   owner, category | forecast_category, currency     optional
///   probability | win_probability                     optional per-deal override in [0, 1]
/// Without `age` or `entered` every age is 0. Dates are ISO-8601.

#include <pipecast/book.hpp>
#include <pipecast/detail/csv.hpp>
#include <pipecast/error.hpp>
#include <pipecast/stage_graph.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <istream>
#include <optional>
#include <string>
#include <unordered_map>

namespace pipecast {

/// Options of read_book_csv.
struct book_csv_options {
    /// Name used in error messages (the file name).
    std::string source = "<stream>";
    /// The as-of date (ISO-8601) ages are measured to, when the file has an `entered` column.
    std::optional<std::string> as_of;
    /// Length of the model time unit in days (see days_per_unit), to turn date differences
    /// into ages.
    double days_per_unit = 1.0;
};

/// Reads a book from CSV text.
/// @throws parse_error naming source:line:column for: a missing required column, a row with
///   too few fields, an empty required field, a bad number or date, an unknown or outcome
///   stage, a negative amount or age, an override outside [0,1], a duplicate deal id.
[[nodiscard]] inline book read_book_csv(std::istream& in, const stage_graph& g, const book_csv_options& opt = {}) {
    detail::csv_reader csv(in, opt.source);
    std::vector<std::string> f;
    if (!csv.next(f)) throw parse_error(opt.source, 0, 0, "empty file: expected a header line");
    const detail::csv_header h(f);
    auto required = [&](std::initializer_list<std::string_view> names) {
        if (auto c = h.find(names)) return *c;
        throw parse_error(opt.source, csv.line(), 0,
                          detail::message("missing required column '", *names.begin(), "'"));
    };
    const std::size_t c_id = required({"id", "deal_id", "deal"});
    const std::size_t c_stage = required({"stage"});
    const std::size_t c_amount = required({"amount", "value"});
    const auto c_age = h.find({"age", "age_in_stage", "days_in_stage"});
    const auto c_entered = h.find({"entered", "stage_entered", "entered_stage", "stage_entered_at"});
    const auto c_owner = h.find({"owner"});
    const auto c_category = h.find({"category", "forecast_category"});
    const auto c_currency = h.find({"currency"});
    const auto c_prob = h.find({"probability", "win_probability", "probability_override"});

    std::optional<double> as_of;
    if (opt.as_of) {
        as_of = detail::parse_iso8601(*opt.as_of);
        if (!as_of) throw argument_error(detail::message("read_book_csv: as-of date '", *opt.as_of, "' is not ISO-8601"));
    }
    if (c_entered && !c_age && !as_of)
        throw parse_error(opt.source, csv.line(), *c_entered + 1,
                          "column 'entered' needs an as-of date to compute ages (give --as-of)");
    if (!(std::isfinite(opt.days_per_unit) && opt.days_per_unit > 0.0))
        throw argument_error(detail::message("read_book_csv: days_per_unit must be positive, got ", opt.days_per_unit));

    std::size_t needed = 0;
    for (auto c : {std::optional<std::size_t>(c_id), std::optional<std::size_t>(c_stage),
                   std::optional<std::size_t>(c_amount), c_age, c_entered, c_owner, c_category, c_currency, c_prob})
        if (c) needed = std::max(needed, *c + 1);

    book b(g);
    std::unordered_map<std::string, std::size_t> seen; // id -> line
    auto field = [&](std::size_t c) -> const std::string& { return f[c]; };
    while (csv.next(f)) {
        const std::size_t line = csv.line();
        if (f.size() < needed)
            throw parse_error(opt.source, line, f.size() + 1, // the first missing field
                              detail::message("expected at least ", needed, " fields, got ", f.size()));
        auto fail = [&](std::size_t c, const std::string& what) -> parse_error {
            return parse_error(opt.source, line, c + 1, detail::message("column '", h.name(c), "': ", what));
        };
        const std::string id(detail::trim(field(c_id)));
        if (id.empty()) throw fail(c_id, "empty deal id");
        if (auto [it, fresh] = seen.emplace(id, line); !fresh)
            throw fail(c_id, detail::message("duplicate deal id '", id, "' (first on line ", it->second, ")"));
        const std::string_view stage_name = detail::trim(field(c_stage));
        const auto stage = g.find(stage_name);
        if (!stage) throw fail(c_stage, detail::message("unknown stage '", stage_name, "'"));
        if (!g.is_open(*stage))
            throw fail(c_stage, detail::message("stage '", stage_name, "' is an outcome; a book holds open deals only"));
        const auto amount = detail::parse_number(field(c_amount), opt.source, line, c_amount + 1, h.name(c_amount));
        if (!amount) throw fail(c_amount, "empty amount");
        if (*amount < 0.0) throw fail(c_amount, detail::message("negative amount ", *amount));

        double age = 0.0;
        if (c_age) {
            const auto a = detail::parse_number(field(*c_age), opt.source, line, *c_age + 1, h.name(*c_age));
            if (!a) throw fail(*c_age, "empty age");
            age = *a;
        } else if (c_entered) {
            const std::string_view text = detail::trim(field(*c_entered));
            if (text.empty()) throw fail(*c_entered, "empty entry date");
            const auto e = detail::parse_iso8601(text);
            if (!e) throw fail(*c_entered, detail::message("expected an ISO-8601 date (YYYY-MM-DD), got '", text, "'"));
            age = (*as_of - *e) / opt.days_per_unit;
            if (age < 0.0) throw fail(*c_entered, detail::message("entry date is after the as-of date ", *opt.as_of));
        }
        if (age < 0.0) throw fail(*c_age, detail::message("negative age ", age));

        std::optional<double> prob;
        if (c_prob) {
            prob = detail::parse_number(field(*c_prob), opt.source, line, *c_prob + 1, h.name(*c_prob));
            if (prob && !(*prob >= 0.0 && *prob <= 1.0))
                throw fail(*c_prob, detail::message("probability override must be in [0, 1], got ", *prob));
        }
        auto opt_field = [&](const std::optional<std::size_t>& c) -> std::string_view {
            return c ? detail::trim(field(*c)) : std::string_view{};
        };
        b.add(id, *stage, *amount, age, prob, opt_field(c_owner), opt_field(c_category), opt_field(c_currency));
    }
    return b;
}

/// Reads a book from a CSV file. @throws error if the file cannot be opened, else as above.
[[nodiscard]] inline book load_book_csv(const std::string& path, const stage_graph& g, book_csv_options opt = {}) {
    std::ifstream in(path);
    if (!in) throw error(detail::message(path, ": cannot open deals file"));
    opt.source = path;
    return read_book_csv(in, g, opt);
}

} // namespace pipecast
