// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file io/book_csv.hpp
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
/// Without `age` or `entered` every age is 0. Dates as detail/dates.hpp reads them (ISO-8601,
/// `YYYY/MM/DD HH:MM`, `M/D/YYYY`, `D.M.YYYY`, or book_csv_options::date_format); amounts with
/// currency symbols or codes and thousands separators (the symbol gives the deal's currency
/// when there is no currency column).
///
/// CRM exports are read directly (book_csv_options::format, detected from the header):
///  Closed deals in these exports (an outcome stage, or `IsClosed` true) are left out.
///  * Salesforce Opportunity report: `Opportunity ID`/`Id`, `Stage`/`StageName`, `Amount`,
///    `Probability (%)` (a percentage: the per-deal override), `LastStageChangeDate` (the entry
///    date of the stage), `Opportunity Owner`/`OwnerId`, `Forecast Category`, `Currency`;
///  * HubSpot deals export: `Record ID`, `Deal Stage`, `Amount`, `Deal owner`, and the entry
///    date of the current stage from its `Date entered "<stage> (<pipeline>)"` column.
/// Any column can be named with book_csv_options::columns (`--map id=商机编号`), and stages
/// renamed with stage_map.

#include <pipecast/data/book.hpp>
#include <pipecast/detail/amounts.hpp>
#include <pipecast/detail/csv.hpp>
#include <pipecast/detail/dates.hpp>
#include <pipecast/detail/encoding.hpp>
#include <pipecast/error.hpp>
#include <pipecast/io/crm_import.hpp>
#include <pipecast/model/stage_graph.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <istream>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

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
    /// Column of a field (id, stage, amount, age, entered, owner, category, currency,
    /// probability), overriding the default header names.
    std::vector<std::pair<std::string, std::string>> columns;
    /// Renames stages as they are read (old -> new).
    std::vector<std::pair<std::string, std::string>> stage_map;
    char delimiter = 0;         ///< ',', ';', tab or '|'; 0: detected from the header
    std::string date_format;    ///< strftime-style pattern of the dates; empty: recognised forms
    bool decimal_comma = false; ///< amounts use a decimal comma
    std::string encoding = "utf-8"; ///< of the file (load_book_csv)
    /// automatic, salesforce or hubspot (the others read the plain columns).
    history_format format = history_format::automatic;
    /// Exchange rates to the report currency (read_fx_rates): a deal's amount in a listed
    /// currency is converted at the rate of the as-of date (else the latest rate) and the deal
    /// is then in the report currency (its currency left empty). A currency without a rate is
    /// an error; amounts without a currency are taken as in the report currency.
    std::vector<fx_rate> fx;
};

/// Reads a book from CSV text.
/// @throws parse_error naming source:line:column for: a missing required column, a row with
///   too few fields, an empty required field, a bad number or date, an unknown or outcome
///   stage, a negative amount or age, an override outside [0,1], a duplicate deal id.
template <class = void>
[[nodiscard]] book read_book_csv(std::istream& in, const stage_graph& g, const book_csv_options& opt = {}) {
    detail::csv_reader csv(in, opt.source, detail::csv_dialect{opt.delimiter, true, std::size_t{1} << 20});
    std::vector<std::string> f;
    if (!csv.next(f)) throw parse_error(opt.source, 0, 0, "empty file: expected a header line");
    const std::vector<std::string> raw = f;
    const detail::csv_header h(f);
    history_format format = opt.format;
    if (format == history_format::automatic) {
        format = detect_history_format(f);
        if (format != history_format::salesforce && format != history_format::hubspot) {
            const bool sf = h.find({"opportunity id", "stagename", "probability (%)", "laststagechangedate", "last stage change date"}).has_value();
            format = sf ? history_format::salesforce : history_format::automatic;
        }
    }
    const bool sf = format == history_format::salesforce, hs = format == history_format::hubspot;
    auto mapped = [&](std::string_view field) -> std::optional<std::size_t> {
        for (const auto& [fld, column] : opt.columns)
            if (detail::lower(detail::trim(fld)) == field) {
                if (auto c = h.find({detail::lower(detail::trim(column))})) return c;
                throw parse_error(opt.source, csv.line(), 0,
                                  detail::message("column '", detail::clip(column), "' mapped to field '", fld,
                                                  "' is not in the header"));
            }
        return std::nullopt;
    };
    auto find = [&](std::initializer_list<std::string_view> names) -> std::optional<std::size_t> {
        if (auto c = mapped(*names.begin())) return c;
        return h.find(names);
    };
    auto required = [&](std::initializer_list<std::string_view> names) {
        if (auto c = find(names)) return *c;
        throw parse_error(opt.source, csv.line(), 0,
                          detail::message("missing required column '", *names.begin(), "' (map it with --map ",
                                          *names.begin(), "=COLUMN)"));
    };
    // Beside the English names, those of Chinese CRM exports and Excel sheets (商机编号, 阶段, ...).
    const std::size_t c_id = required({"id", "deal_id", "deal", "opportunity id", "opportunityid", "record id", "deal id",
                                       "商机编号", "商机id", "商机号", "机会编号", "编号"});
    const std::size_t c_stage = required({"stage", "stagename", "stage name", "deal stage", "dealstage", "阶段", "销售阶段",
                                          "商机阶段"});
    const std::size_t c_amount = required({"amount", "value", "金额", "商机金额", "预计金额", "合同金额"});
    const auto c_age = find({"age", "age_in_stage", "days_in_stage", "阶段停留天数", "停留天数"});
    auto c_entered = find({"entered", "stage_entered", "entered_stage", "stage_entered_at", "laststagechangedate",
                           "last stage change date"});
    const auto c_owner = find({"owner", "opportunity owner", "ownerid", "owner name", "deal owner", "hubspot_owner_id", "负责人",
                               "销售负责人", "所有人"});
    const auto c_category = find({"category", "forecast_category", "forecast category", "forecastcategory", "forecastcategoryname"});
    const auto c_currency = find({"currency", "currencyisocode", "opportunity currency"});
    const auto c_prob = find({"probability", "win_probability", "probability_override", "probability (%)"});
    constexpr std::size_t no_col = static_cast<std::size_t>(-1);
    const std::size_t c_closed = (sf || hs) ? h.find({"isclosed", "is closed", "closed"}).value_or(no_col) : no_col;
    const bool percent = c_prob && (h.name(*c_prob) == "probability (%)" || (sf && h.name(*c_prob) == "probability"));
    // HubSpot: the entry date of the deal's current stage, from its "Date entered" column
    std::unordered_map<std::string, std::size_t> hubspot_entered;
    if (hs && !c_entered)
        for (std::size_t c = 0; c < raw.size(); ++c)
            if (auto [kind, stage] = detail::hubspot_stage_column(raw[c]); kind == "entered") hubspot_entered.emplace(stage, c);
    const bool sf_age_is_deal_age = sf && c_age && !mapped("age"); // Salesforce's Age counts from creation
    const bool use_age = c_age && !sf_age_is_deal_age;
    std::unordered_map<std::string, std::string> stage_map(opt.stage_map.begin(), opt.stage_map.end());

    std::optional<double> as_of;
    if (opt.as_of) {
        as_of = detail::parse_iso8601(*opt.as_of);
        if (!as_of) throw argument_error(detail::message("read_book_csv: as-of date '", *opt.as_of, "' is not ISO-8601"));
    }
    if ((c_entered || !hubspot_entered.empty()) && !use_age && !as_of)
        throw parse_error(opt.source, csv.line(), c_entered ? *c_entered + 1 : 0,
                          "column 'entered' needs an as-of date to compute ages (give --as-of)");
    if (!(std::isfinite(opt.days_per_unit) && opt.days_per_unit > 0.0))
        throw argument_error(detail::message("read_book_csv: days_per_unit must be positive, got ", opt.days_per_unit));

    std::size_t needed = 0;
    for (auto c : {std::optional<std::size_t>(c_id), std::optional<std::size_t>(c_stage),
                   std::optional<std::size_t>(c_amount), c_age, c_entered, c_owner, c_category, c_currency, c_prob})
        if (c) needed = std::max(needed, *c + 1);

    book b(g);
    std::unordered_map<std::string, std::size_t> seen; // id -> line
    double total = 0.0;
    auto field = [&](std::size_t c) -> const std::string& { return f[c]; };
    while (csv.next(f)) {
        const std::size_t line = csv.line();
        if (f.size() > h.size())
            throw parse_error(opt.source, line, h.size() + 1,
                              detail::message("the row has ", f.size(), " fields, the header ", h.size(),
                                              ": a value with an unquoted '", std::string(1, csv.delimiter()),
                                              "' (like 1,200)? the first extra field is '", detail::clip(f[h.size()]), "'"));
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
        std::string_view stage_name = detail::trim(field(c_stage));
        if (auto it = stage_map.find(std::string(stage_name)); it != stage_map.end()) stage_name = it->second;
        const auto stage = g.find(stage_name);
        // a CRM report lists closed deals too: they are not part of the open book
        const bool closed_flag = c_closed != no_col && c_closed < f.size() &&
                                 (detail::lower(detail::trim(field(c_closed))) == "true" || detail::trim(field(c_closed)) == "1");
        if ((sf || hs) && (closed_flag || (stage && !g.is_open(*stage)) ||
                           (!stage && outcome_by_name(stage_name) != outcome_kind::none))) {
            seen.erase(id);
            continue;
        }
        if (!stage) throw fail(c_stage, detail::message("unknown stage '", detail::clip(stage_name), "'"));
        if (!g.is_open(*stage))
            throw fail(c_stage, detail::message("stage '", stage_name, "' is an outcome; a book holds open deals only"));
        const auto amount_v = detail::parse_amount(field(c_amount), opt.decimal_comma, opt.source, line, c_amount + 1, h.name(c_amount));
        if (!amount_v) throw fail(c_amount, "empty amount");
        const std::optional<double> amount = amount_v->value;

        double age = 0.0;
        std::optional<std::size_t> entered_col = c_entered;
        if (!entered_col && !hubspot_entered.empty()) {
            const auto it = hubspot_entered.find(std::string(detail::trim(field(c_stage))));
            if (it == hubspot_entered.end())
                throw fail(c_stage, detail::message("no 'Date entered' column for stage '", detail::clip(field(c_stage)), "'"));
            entered_col = it->second;
            if (*entered_col >= f.size()) // not counted in `needed`: the row may end before it
                throw parse_error(opt.source, line, f.size() + 1,
                                  detail::message("expected ", *entered_col + 1, " fields (to column '", detail::clip(h.name(*entered_col)),
                                                  "'), got ", f.size()));
        }
        if (use_age) {
            const auto a = detail::parse_number(field(*c_age), opt.source, line, *c_age + 1, h.name(*c_age));
            if (!a) throw fail(*c_age, "empty age");
            age = *a;
        } else if (entered_col) {
            const std::string_view text = detail::trim(field(*entered_col));
            if (text.empty()) throw fail(*entered_col, "empty entry date");
            std::optional<double> e;
            if (!opt.date_format.empty()) {
                auto r = detail::parse_date_pattern(text, opt.date_format);
                if (!r.days) throw fail(*entered_col, r.problem);
                e = r.days;
            } else {
                auto r = detail::parse_date(text);
                if (!r.days && !r.problem.empty()) throw fail(*entered_col, r.problem);
                e = r.days;
            }
            if (!e) throw fail(*entered_col, detail::message("expected an ISO-8601 date (YYYY-MM-DD), got '", detail::clip(text), "'"));
            age = (*as_of - *e) / opt.days_per_unit;
            if (age < 0.0) throw fail(*entered_col, detail::message("entry date is after the as-of date ", *opt.as_of));
        }
        if (age < 0.0) throw fail(use_age ? *c_age : *entered_col, detail::message("negative age ", age));
        if (!(age <= detail::max_abs_time))
            throw fail(use_age ? *c_age : *entered_col,
                       detail::message("age ", age, " is out of range (at most ", detail::max_abs_time, ")"));

        std::optional<double> prob;
        if (c_prob) {
            std::string_view text = detail::trim(field(*c_prob));
            const bool pct_sign = text.ends_with('%');
            if (pct_sign) text.remove_suffix(1);
            prob = detail::parse_number(text, opt.source, line, *c_prob + 1, h.name(*c_prob));
            if (prob && (percent || pct_sign)) *prob /= 100.0;
            if (prob && !(*prob >= 0.0 && *prob <= 1.0))
                throw fail(*c_prob, detail::message("probability override must be in [0, 1], got ", *prob));
        }
        auto opt_field = [&](const std::optional<std::size_t>& c) -> std::string_view {
            return c ? detail::trim(field(*c)) : std::string_view{};
        };
        std::string currency = c_currency ? std::string(opt_field(c_currency)) : amount_v->currency;
        double value = *amount;
        if (!opt.fx.empty() && !currency.empty()) {
            const auto rate = detail::fx_rate_at(opt.fx, detail::currency_code_of(currency),
                                                 as_of ? *as_of : std::numeric_limits<double>::quiet_NaN());
            if (!rate) throw fail(c_currency ? *c_currency : c_amount, detail::message("no exchange rate for ", detail::clip(currency), " (--fx)"));
            value *= *rate;
            currency.clear();
            if (!std::isfinite(value))
                throw fail(c_amount, detail::message("the amount ", *amount, " converted at the rate ", *rate, " overflows"));
        }
        total += value;
        if (!std::isfinite(total)) throw fail(c_amount, detail::message("the amounts' sum overflows at '", detail::clip(field(c_amount)), "'"));
        b.add(id, *stage, value, age, prob, opt_field(c_owner), opt_field(c_category), currency);
    }
    return b;
}

/// Reads a book from a CSV file. @throws error if the file cannot be opened, else as above.
template <class = void>
[[nodiscard]] book load_book_csv(const std::string& path, const stage_graph& g, book_csv_options opt = {}) {
    std::istringstream in(detail::to_utf8(detail::read_file_bytes(path, "deals file"), opt.encoding, path));
    opt.source = path;
    return read_book_csv(in, g, opt);
}

} // namespace pipecast
