// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file io/crm_import.hpp
/// @brief Reading CRM exports as they come: a deal history in any of five formats, told
/// apart by the header (or named), in UTF-8 or a spreadsheet encoding, with columns and
/// stages mapped by name. See docs/import.md.
///
/// Formats (history_format):
///  * `visits` — one row per stage visit (read_visit_log);
///  * `changes` — one row per stage change (read_stage_changes);
///  * `salesforce` — an OpportunityHistory export: `OpportunityId, StageName, CreatedDate,
///    Amount[, CurrencyIsoCode][, FromOpportunityStageName][, IsDeleted]`, read as stage changes
///    (`CreatedDate` of the history row is the change time; `FromOpportunityStageName` orders
///    changes of one deal with equal times; rows with `IsDeleted` true are left out;
///    `CreatedById` becomes the extra column `owner` when there is no owner column);
///  * `hubspot` — a deals export, one row per deal: `Record ID, Deal Stage, Amount,
///    Create Date, Close Date, Deal owner` and `Date entered "<stage> (<pipeline>)"` /
///    `Date exited "<stage> (<pipeline>)"` per stage. HubSpot keeps only the latest entry
///    and exit of each stage, so a deal that moved back loses its earlier visits: the visits
///    are rebuilt from the entry times in time order (each visit ends at the next entry) and
///    the deals whose exit times show a lost visit are counted in `import_result::lossy_deals`;
///  * `opportunities` — one row per deal with a created and/or engaged date, a close date and
///    the final stage (`opportunity_id, sales_agent, deal_stage, engage_date, close_date,
///    close_value`, the "CRM Sales Opportunities" sample): a deal visits `Prospecting` from its
///    created date and `Engaging` from its engaged date, then its outcome at the close date;
///    a deal with no date at all cannot be placed in time and is counted in `undated_deals`.
///
/// Outcomes are recognised by name (outcome_by_name, English and Chinese) unless the options
/// turn recognise_outcomes off; a stage that ends deals without being an outcome is an error.

#include <pipecast/data/history.hpp>
#include <pipecast/detail/csv.hpp>
#include <pipecast/detail/encoding.hpp>
#include <pipecast/error.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pipecast {

/// The layout of a history file.
enum class history_format { automatic, visits, changes, salesforce, hubspot, opportunities };

/// The name of a format: "auto", "visits", "changes", "salesforce", "hubspot", "opportunities".
template <class = void>
[[nodiscard]] std::string_view to_string(history_format f) noexcept {
    switch (f) {
    case history_format::visits: return "visits";
    case history_format::changes: return "changes";
    case history_format::salesforce: return "salesforce";
    case history_format::hubspot: return "hubspot";
    case history_format::opportunities: return "opportunities";
    default: return "auto";
    }
}

/// A format by name (case-insensitive; "auto" or empty: automatic).
/// @throws argument_error naming the value for an unknown name.
template <class = void>
[[nodiscard]] history_format parse_history_format(std::string_view name) {
    const std::string n = detail::lower(detail::trim(name));
    for (auto f : {history_format::automatic, history_format::visits, history_format::changes, history_format::salesforce,
                   history_format::hubspot, history_format::opportunities})
        if (n == to_string(f)) return f;
    if (n.empty() || n == "automatic") return history_format::automatic;
    if (n == "visit" || n == "visit_log") return history_format::visits;
    if (n == "stage_changes" || n == "change") return history_format::changes;
    throw argument_error(detail::message("format '", detail::clip(name),
                                         "' is unknown (auto, visits, changes, salesforce, hubspot, opportunities)"));
}

/// Options of import_history.
struct import_options {
    /// How to read the rows: column map, stage map, outcomes, dates, amounts, delimiter,
    /// as-of, time unit, skip_bad_rows. recognise_outcomes is on by default here.
    history_options history = [] {
        history_options o;
        o.recognise_outcomes = true;
        return o;
    }();
    history_format format = history_format::automatic; ///< automatic: from the header
    std::string encoding = "utf-8"; ///< utf-8, gb18030, gbk, windows-1252, latin1, utf-16
};

/// A history read from a CRM export, and how it was read.
struct import_result {
    visit_log log;
    history_format format = history_format::automatic; ///< the format read (detected or given)
    std::string encoding = "utf-8";
    char delimiter = ',';
    std::string currency;          ///< the one currency of the amounts, when written
    std::size_t rows = 0;          ///< data rows in the file
    std::size_t deleted_rows = 0;  ///< Salesforce rows with IsDeleted true (left out)
    std::size_t lossy_deals = 0;   ///< HubSpot deals whose exit times show a lost visit (a back-move)
    std::size_t undated_deals = 0; ///< opportunities without any date (left out)
};

namespace detail {

/// A header name of a HubSpot stage column: `date entered "Proposal (Sales Pipeline)"` ->
/// ("entered", "Proposal"). Empty stage if the column is not one.
template <class = void>
[[nodiscard]] std::pair<std::string, std::string> hubspot_stage_column(std::string_view raw) {
    const std::string l = lower(trim(raw));
    std::string kind;
    std::size_t skip = 0;
    if (l.starts_with("date entered")) kind = "entered", skip = 12;
    else if (l.starts_with("date exited")) kind = "exited", skip = 11;
    else return {};
    std::string_view rest = trim(trim(raw).substr(skip));
    if (rest.size() >= 2 && rest.front() == '"' && rest.back() == '"') rest = rest.substr(1, rest.size() - 2);
    rest = trim(rest);
    if (rest.ends_with(")")) { // strip the pipeline: "Proposal (Sales Pipeline)"
        if (const auto open = rest.rfind(" ("); open != std::string_view::npos) rest = trim(rest.substr(0, open));
    }
    if (rest.empty()) return {};
    return {kind, std::string(rest)};
}

/// True if a header (lower-case names) holds any of `names`.
template <class = void>
[[nodiscard]] bool has_any(const csv_header& h, std::initializer_list<std::string_view> names) {
    return h.find(names).has_value();
}

/// True if the options map `field` to a column.
template <class = void>
[[nodiscard]] bool maps(const history_options& opt, std::string_view field) {
    for (const auto& [f, c] : opt.columns)
        if (lower(trim(f)) == field) return true;
    return false;
}

} // namespace detail

/// The format a header says: HubSpot (`Date entered "…"` columns, `Record ID`), Salesforce
/// (`OpportunityId` or `StageName` with `CreatedDate`), a visit log (an exit-time column, or
/// `exited` mapped), an opportunity table (a close-date column and a created or engaged
/// date, no change time), else a stage-change log.
template <class = void>
[[nodiscard]] history_format detect_history_format(const std::vector<std::string>& header,
                                                   const history_options& opt = {}) {
    const detail::csv_header h(header);
    if (detail::maps(opt, "exited") || detail::maps(opt, "entered")) return history_format::visits;
    if (detail::maps(opt, "changed_at")) return history_format::changes;
    for (const auto& name : header)
        if (!detail::hubspot_stage_column(name).second.empty()) return history_format::hubspot;
    if (detail::has_any(h, {"record id"}) && detail::has_any(h, {"deal stage"})) return history_format::hubspot;
    if (detail::has_any(h, {"opportunityid", "opportunity id"}) ||
        (detail::has_any(h, {"stagename"}) && detail::has_any(h, {"createddate", "created date"})))
        return history_format::salesforce;
    if (detail::has_any(h, {"exited", "exited_at", "end"})) return history_format::visits;
    if (detail::has_any(h, {"changed_at", "changed", "timestamp"})) return history_format::changes;
    if (detail::has_any(h, {"close_date", "closed_at", "close date", "closedate", "closed"}) &&
        detail::has_any(h, {"engage_date", "engaged_at", "engaged", "created", "created_at", "create_date", "created date"}))
        return history_format::opportunities;
    return history_format::changes;
}

namespace detail {

/// Salesforce OpportunityHistory: stage changes with Salesforce's column names.
template <class = void>
[[nodiscard]] visit_log read_salesforce_history(std::istream& in, const history_options& opt, import_result& res) {
    history_reader r(in, opt);
    const std::size_t c_id = r.required({"deal_id", "opportunityid", "opportunity id", "opportunity: id", "deal", "id"});
    const std::size_t c_stage = r.required({"stage", "stagename", "stage name", "to stage"});
    const std::size_t c_time = r.required({"changed_at", "createddate", "created date", "date", "changed"});
    const auto c_amount = r.optional({"amount", "value"});
    const auto c_from = r.optional({"from_stage", "fromopportunitystagename", "from stage", "from opportunity stage name"});
    const auto c_deleted = r.optional({"deleted", "isdeleted", "is deleted"});
    r.currency_column();
    r.ignore({"id", "expectedrevenue", "expected revenue", "closedate", "close date", "probability", "probability (%)",
              "forecastcategory", "forecast category", "forecastcategoryname", "systemmodstamp", "prevamount",
              "prevclosedate", "fromforecastcategory"});
    r.keep_extra_columns();
    visit_log& log = r.log();
    bool has_owner = false;
    for (const auto& c : log.extra_columns) has_owner |= c == "owner";
    for (auto& c : log.extra_columns)
        if (!has_owner && (c == "createdbyid" || c == "created by id" || c == "created by")) c = "owner";

    std::vector<change_row> rows;
    while (r.next()) {
        ++res.rows;
        r.row([&] {
            if (c_deleted) {
                const std::string d = lower(r.field(*c_deleted));
                if (d == "1" || d == "true") {
                    ++res.deleted_rows;
                    return;
                }
            }
            const std::string_view id = r.field(c_id);
            if (id.empty()) r.row_error(c_id, "empty opportunity id");
            const std::string_view stage = r.stage_name(c_stage, true);
            const auto t = r.time(c_time);
            if (!t) r.row_error(c_time, "empty change time");
            const double amount = r.amount(c_amount);
            change_row row{log.deal_code(id), log.stage_code(stage), *t, amount, r.line(), r.extra_codes()};
            if (c_from && !r.field(*c_from).empty()) row.from = log.stage_code(r.stage_name(*c_from, false));
            rows.push_back(std::move(row));
        });
    }
    res.currency = r.currency();
    return visits_from_changes(log, std::move(rows), opt, r.as_of(), r.dates_kind(), c_stage + 1);
}

/// HubSpot deals export: the stage changes rebuilt from the `Date entered` columns.
template <class = void>
[[nodiscard]] visit_log read_hubspot_deals(std::istream& in, const history_options& opt, import_result& res) {
    history_reader r(in, opt);
    const std::size_t c_id = r.required({"deal_id", "record id", "deal id", "hs_object_id", "id"});
    const std::size_t c_stage = r.required({"stage", "deal stage", "dealstage"});
    const auto c_amount = r.optional({"amount", "value"});
    const auto c_create = r.optional({"created", "create date", "createdate"});
    const auto c_close = r.optional({"closed", "close date", "closedate"});
    r.currency_column();
    struct stage_col {
        std::size_t column;
        std::string stage;
    };
    std::vector<stage_col> entered_cols, exited_cols;
    for (std::size_t c = 0; c < r.header().size(); ++c) {
        auto [kind, stage] = hubspot_stage_column(r.raw_name(c));
        if (stage.empty()) continue;
        (kind == "entered" ? entered_cols : exited_cols).push_back({c, stage});
        r.ignore({r.header().name(c)});
    }
    if (entered_cols.empty())
        throw parse_error(opt.source, r.line(), 0,
                          "no 'Date entered \"<stage> (<pipeline>)\"' columns: export the deals with the stage dates");
    r.ignore({"deal name", "dealname", "pipeline", "last modified date", "hs_lastmodifieddate"});
    r.keep_extra_columns();
    visit_log& log = r.log();
    for (auto& c : log.extra_columns)
        if (c == "deal owner" || c == "hubspot_owner_id") c = "owner";

    std::vector<change_row> rows;
    struct event {
        double time;
        std::size_t order, column;
        std::string_view stage;
    };
    std::vector<event> events;
    while (r.next()) {
        ++res.rows;
        r.row([&] {
            const std::string_view id = r.field(c_id);
            if (id.empty()) r.row_error(c_id, "empty record id");
            const std::string current(r.stage_name(c_stage, true));
            if (c_create) (void)r.time(*c_create); // the row's first date (for --fx)
            const auto extra = r.extra_codes();
            events.clear();
            for (std::size_t k = 0; k < entered_cols.size(); ++k)
                if (const auto t = r.time(entered_cols[k].column))
                    events.push_back({*t, k, entered_cols[k].column,
                                      r.stage_text(entered_cols[k].stage, entered_cols[k].column, true)});
            if (events.empty()) { // no stage dates: the current stage since the create date
                if (!c_create) r.row_error(c_stage, "no stage entry date and no create date");
                const auto t = r.time(*c_create);
                if (!t) r.row_error(*c_create, "no stage entry date and an empty create date");
                events.push_back({*t, 0, *c_create, current});
            }
            std::stable_sort(events.begin(), events.end(), [](const event& a, const event& b) {
                return a.time != b.time ? a.time < b.time : a.order < b.order;
            });
            if (events.back().stage != current) { // the current stage has no (later) entry date
                const bool closed = outcome_of(current, opt) != outcome_kind::none;
                std::optional<double> t;
                if (closed && c_close) t = r.time(*c_close);
                if (!t) r.row_error(c_stage, message("deal stage '", clip(current), "' is not the stage entered last ('",
                                                     clip(events.back().stage), "')"));
                events.push_back({std::max(*t, events.back().time), events.size(), c_stage, current});
            }
            // exit times that match no later entry show a visit HubSpot did not keep
            bool lossy = false;
            for (std::size_t k = 0; k + 1 < events.size(); ++k)
                for (const auto& x : exited_cols)
                    if (r.stage_text(x.stage, x.column, true) == events[k].stage)
                        if (const auto t = r.time(x.column); t && !same_time(*t, events[k + 1].time) &&
                                                             std::abs(*t - events[k + 1].time) * opt.days_per_unit > 1.0 / 1440)
                            lossy = true;
            if (lossy) ++res.lossy_deals;
            const double amount = r.amount(c_amount);
            const std::uint32_t deal = log.deal_code(id);
            for (const auto& e : events) rows.push_back({deal, log.stage_code(e.stage), e.time, amount, r.line(), extra});
        });
    }
    res.currency = r.currency();
    return visits_from_changes(log, std::move(rows), opt, r.as_of(), r.dates_kind(), c_stage + 1);
}

/// Opportunity table: created -> Prospecting, engaged -> Engaging, closed -> the outcome.
template <class = void>
[[nodiscard]] visit_log read_opportunity_table(std::istream& in, const history_options& opt, import_result& res) {
    history_reader r(in, opt);
    const std::size_t c_id = r.required({"deal_id", "opportunity_id", "opportunity id", "id", "deal"});
    const std::size_t c_stage = r.required({"stage", "deal_stage", "deal stage", "status"});
    const auto c_created = r.optional({"created", "created_at", "create_date", "created date", "create date"});
    const auto c_engaged = r.optional({"engaged", "engage_date", "engaged_at", "engage date"});
    const auto c_closed = r.optional({"closed", "close_date", "closed_at", "close date", "closedate"});
    const auto c_amount = r.optional({"amount", "close_value", "value", "close value"});
    if (!c_created && !c_engaged)
        throw parse_error(opt.source, r.line(), 0, "missing a created or engaged date column (map one with --map created=COLUMN)");
    r.currency_column();
    r.keep_extra_columns();
    visit_log& log = r.log();
    for (auto& c : log.extra_columns)
        if (c == "sales_agent" || c == "sales agent") c = "owner";
    auto mapped = [&](std::string_view name) -> std::string {
        for (const auto& [old_name, new_name] : opt.stage_map)
            if (old_name == name) return new_name;
        return std::string(name);
    };
    const std::string first_stage = mapped("Prospecting"), second_stage = mapped("Engaging");
    std::vector<change_row> rows;
    while (r.next()) {
        ++res.rows;
        r.row([&] {
            const std::string_view id = r.field(c_id);
            if (id.empty()) r.row_error(c_id, "empty opportunity id");
            const std::string stage(r.stage_name(c_stage, true));
            const bool closed = outcome_of(stage, opt) != outcome_kind::none;
            const double nan = std::numeric_limits<double>::quiet_NaN();
            auto time_of = [&](std::optional<std::size_t> c) {
                if (!c) return nan;
                const auto t = r.time(*c);
                return t ? *t : nan;
            };
            const double created = time_of(c_created), engaged = time_of(c_engaged), close = time_of(c_closed);
            const double amount = r.amount(c_amount);
            if (std::isnan(created) && std::isnan(engaged)) {
                if (closed) r.row_error(c_stage, message("closed deal ('", clip(stage), "') without a created or engaged date"));
                ++res.undated_deals;
                return;
            }
            if (closed && std::isnan(close))
                r.row_error(c_closed ? *c_closed : c_stage, message("closed deal ('", clip(stage), "') without a close date"));
            if (!std::isnan(created) && !std::isnan(engaged) && engaged < created)
                r.row_error(*c_engaged, "engaged before it was created");
            const double start = std::isnan(engaged) ? created : engaged;
            if (!std::isnan(close) && close < start) r.row_error(*c_closed, "closed before it was created or engaged");
            const auto extra = r.extra_codes();
            const std::uint32_t deal = log.deal_code(id);
            if (!std::isnan(created)) rows.push_back({deal, log.stage_code(first_stage), created, amount, r.line(), extra});
            if (!std::isnan(engaged)) rows.push_back({deal, log.stage_code(second_stage), engaged, amount, r.line(), extra});
            if (closed) rows.push_back({deal, log.stage_code(stage), close, amount, r.line(), extra});
            else if (stage != (std::isnan(engaged) ? first_stage : second_stage))
                rows.push_back({deal, log.stage_code(stage), start, amount, r.line(), extra});
        });
    }
    res.currency = r.currency();
    return visits_from_changes(log, std::move(rows), opt, r.as_of(), r.dates_kind(), c_stage + 1);
}

} // namespace detail

/// Reads a history from UTF-8 text in the given (or detected) format.
/// @throws parse_error naming source:line:column, the field and the value (at most 80
///   characters) for anything the format's reader refuses; argument_error for bad options.
template <class = void>
[[nodiscard]] import_result import_history_text(const std::string& text, const import_options& opt) {
    import_result res;
    res.encoding = opt.encoding;
    std::istringstream head(text);
    detail::csv_reader csv(head, opt.history.source, detail::csv_dialect{opt.history.delimiter, true, std::size_t{1} << 20});
    std::vector<std::string> header;
    if (!csv.next(header)) throw parse_error(opt.history.source, 0, 0, "empty file: expected a header line");
    res.delimiter = csv.delimiter();
    res.format = opt.format == history_format::automatic ? detect_history_format(header, opt.history) : opt.format;
    history_options ho = opt.history;
    ho.delimiter = res.delimiter;
    std::istringstream in(text);
    switch (res.format) {
    case history_format::visits: res.log = detail::read_visit_log_impl(in, ho, &res.currency); break;
    case history_format::changes: res.log = detail::read_stage_changes_impl(in, ho, &res.currency); break;
    case history_format::salesforce: res.log = detail::read_salesforce_history(in, ho, res); break;
    case history_format::hubspot: res.log = detail::read_hubspot_deals(in, ho, res); break;
    case history_format::opportunities: res.log = detail::read_opportunity_table(in, ho, res); break;
    default: break;
    }
    if (res.format == history_format::visits || res.format == history_format::changes) {
        std::size_t rows = 0;
        std::istringstream count(text);
        detail::csv_reader c(count, ho.source, detail::csv_dialect{ho.delimiter, false, std::size_t{1} << 20});
        std::vector<std::string> f;
        while (c.next(f)) ++rows;
        res.rows = rows ? rows - 1 : 0;
    }
    return res;
}

/// Reads a history file: its bytes converted from `opt.encoding` to UTF-8, then as
/// import_history_text. The source in messages is the path.
/// @throws error if the path is missing, a directory or unreadable; parse_error for bytes
///   invalid in the encoding (line and byte column) and as import_history_text.
/// Example: `auto r = import_history("export.csv", {}); fit_history(r.log, {});`
template <class = void>
[[nodiscard]] import_result import_history(const std::string& path, import_options opt) {
    opt.history.source = path;
    std::string text = detail::to_utf8(detail::read_file_bytes(path, "history file"), opt.encoding, path);
    return import_history_text(text, opt);
}

/// The outcomes of a log that count as wins under the options (by name, --won, --lost):
/// the list to give fit_options::won so that 赢单 or a custom name is a win.
template <class = void>
[[nodiscard]] std::vector<std::string> won_outcomes(const visit_log& log, const history_options& opt) {
    std::vector<std::string> out;
    for (std::size_t s = 0; s < log.stage_names.size(); ++s)
        if (!log.stage_open[s] && outcome_of(log.stage_names[s], opt) == outcome_kind::won) out.push_back(log.stage_names[s]);
    return out;
}

} // namespace pipecast
