// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file report/svg.hpp
/// @brief Small SVG charts drawn by the project, for the pipeline report: line charts with
/// bands, reference lines and dots (fan chart, win probability by age, survival curves,
/// calibration), grouped horizontal bars (funnel against the ideal funnel), and histograms.
/// Each chart is one self-contained `<svg class="chart">` element: no script, no external
/// font or style, text escaped (Chinese and accented names pass through as UTF-8). Every
/// drawn data mark carries `class="mark"` so a test can check a chart is not empty.
///
/// Axes get "nice" ticks (1, 2, 2.5 or 5 times a power of ten: nice_ticks) labelled as
/// numbers, money (12k, 1.5M), percentages or ISO dates.

#include <pipecast/data/history_view.hpp>
#include <pipecast/error.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pipecast::svg {

/// `text` escaped for XML/HTML text and attribute values (& < > " '); other bytes, UTF-8
/// included, are kept. Control characters other than tab and newline become spaces.
template <class = void>
[[nodiscard]] std::string escape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&#39;"; break;
        default:
            if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n') out += ' ';
            else out += c;
        }
    }
    return out;
}

/// Axis ticks: lo <= values <= hi, equally spaced by `step`.
struct axis_ticks {
    double lo = 0.0, hi = 1.0; ///< the axis range, widened to whole steps
    double step = 1.0;
    std::vector<double> values;
};

/// About `target` readable ticks covering [lo, hi]: a step of 1, 2, 2.5 or 5 × 10^k and an
/// axis range widened to whole steps. An empty range (lo == hi) is widened around the value.
/// @throws argument_error when lo or hi is not finite or hi < lo, or target is 0.
/// Example: `nice_ticks(0, 93, 5)` gives 0, 20, 40, 60, 80, 100.
template <class = void>
[[nodiscard]] axis_ticks nice_ticks(double lo, double hi, std::size_t target = 5) {
    if (!(std::isfinite(lo) && std::isfinite(hi) && lo <= hi))
        throw argument_error(pipecast::detail::message("svg::nice_ticks: bad range [", lo, ", ", hi, "]"));
    if (target == 0) throw argument_error("svg::nice_ticks: target must be >= 1");
    if (hi - lo <= 1e-12 * std::max(1.0, std::abs(lo))) {
        const double pad = lo == 0.0 ? 1.0 : std::abs(lo) * 0.1;
        lo -= pad;
        hi += pad;
    }
    const double raw = (hi - lo) / static_cast<double>(target);
    const double p = std::pow(10.0, std::floor(std::log10(raw)));
    double step = 10.0 * p;
    for (const double m : {1.0, 2.0, 2.5, 5.0})
        if (m * p >= raw * (1.0 - 1e-9)) {
            step = m * p;
            break;
        }
    axis_ticks t;
    t.step = step;
    t.lo = std::floor(lo / step + 1e-9) * step;
    t.hi = std::ceil(hi / step - 1e-9) * step;
    const auto n = static_cast<std::size_t>(std::llround((t.hi - t.lo) / step));
    for (std::size_t i = 0; i <= n; ++i) {
        double v = t.lo + step * static_cast<double>(i);
        if (std::abs(v) < step * 1e-9) v = 0.0;
        t.values.push_back(v);
    }
    return t;
}

/// How an axis labels its ticks.
enum class axis_format { number, money, percent, date };

/// A tick label: number ("2.5", "120"), money ("0", "250k", "1.5M", "2B"), percent of a
/// probability ("40%") or an ISO date of a time in days since 1970-01-01 ("2025-07-14").
template <class = void>
[[nodiscard]] std::string tick_label(double v, axis_format f, double step = 0.0) {
    char buf[64];
    auto trim = [](std::string s) {
        if (s.find('.') != std::string::npos) {
            while (!s.empty() && s.back() == '0') s.pop_back();
            if (!s.empty() && s.back() == '.') s.pop_back();
        }
        return s == "-0" ? std::string("0") : s;
    };
    switch (f) {
    case axis_format::percent: std::snprintf(buf, sizeof buf, "%.*f", step > 0 && step < 0.01 ? 1 : 0, 100.0 * v); return trim(buf) + "%";
    case axis_format::date: return format_time(v, true, 1.0);
    case axis_format::money: {
        const double a = std::abs(v);
        const char* unit = "";
        double d = 1.0;
        if (a >= 1e9) unit = "B", d = 1e9;
        else if (a >= 1e6) unit = "M", d = 1e6;
        else if (a >= 1e3) unit = "k", d = 1e3;
        std::snprintf(buf, sizeof buf, "%.2f", v / d);
        return trim(buf) + unit;
    }
    case axis_format::number: break;
    }
    std::snprintf(buf, sizeof buf, "%.4g", v);
    return trim(buf);
}

/// A line (or, with `dots`, scattered points) of a line chart.
struct series {
    std::string name;
    std::vector<double> x, y;
    std::string color = "#1f77b4";
    bool dots = false;    ///< points instead of a line
    bool dashed = false;
    double radius = 3.0;  ///< dot radius
    /// Per point colour of dots (empty: `color`).
    std::vector<std::string> point_colors;
};

/// A line series.
template <class = void>
[[nodiscard]] series line_series(std::string name, std::vector<double> x, std::vector<double> y, std::string color,
                                 bool dashed = false) {
    series s;
    s.name = std::move(name);
    s.x = std::move(x);
    s.y = std::move(y);
    s.color = std::move(color);
    s.dashed = dashed;
    return s;
}

/// A series of dots.
template <class = void>
[[nodiscard]] series dot_series(std::string name, std::vector<double> x, std::vector<double> y, std::string color,
                                double radius = 3.0) {
    series s = line_series(std::move(name), std::move(x), std::move(y), std::move(color));
    s.dots = true;
    s.radius = radius;
    return s;
}

/// A shaded band between two curves (P10–P90).
struct band {
    std::string name;
    std::vector<double> x, lo, hi;
    std::string color = "#1f77b4";
};

/// A horizontal reference line (the quota).
struct reference_line {
    double y = 0.0;
    std::string label;
    std::string color = "#d62728";
};

/// A line chart: bands, lines, dots and reference lines on shared axes.
struct line_chart {
    std::string title, x_label, y_label;
    axis_format x_format = axis_format::number, y_format = axis_format::number;
    std::vector<band> bands;
    std::vector<series> lines;
    std::vector<reference_line> references;
    std::optional<double> y_min, y_max, x_min, x_max; ///< fixed axis ends (else from the data)
    double width = 720.0, height = 360.0;
};

namespace detail {

template <class = void>
std::string num(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", v);
    return buf;
}

/// The frame of a chart: plot area and axis mapping.
struct frame {
    double left = 70.0, right = 20.0, top = 40.0, bottom = 50.0;
    double w = 0.0, h = 0.0;
    axis_ticks xt, yt;
    [[nodiscard]] double px(double x) const { return left + (x - xt.lo) / (xt.hi - xt.lo) * (w - left - right); }
    [[nodiscard]] double py(double y) const { return h - bottom - (y - yt.lo) / (yt.hi - yt.lo) * (h - top - bottom); }
};

template <class = void>
std::string open_svg(const std::string& title, double w, double h, std::string_view kind) {
    std::string s = "<svg class=\"chart\" data-kind=\"";
    s += kind;
    s += "\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 " + num(w) + " " + num(h) + "\" width=\"" + num(w) +
         "\" height=\"" + num(h) + "\" role=\"img\" font-family=\"sans-serif\" font-size=\"12\">";
    s += "<title>" + escape(title) + "</title>";
    s += "<rect x=\"0\" y=\"0\" width=\"" + num(w) + "\" height=\"" + num(h) + "\" fill=\"#ffffff\"/>";
    s += "<text x=\"" + num(w / 2) + "\" y=\"20\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">" +
         escape(title) + "</text>";
    return s;
}

template <class = void>
std::string axes(const frame& f, axis_format xf, axis_format yf, const std::string& xl, const std::string& yl,
                 bool x_ticks = true) {
    std::string s;
    const double x0 = f.left, x1 = f.w - f.right, y0 = f.h - f.bottom, y1 = f.top;
    for (double v : f.yt.values) {
        const double y = f.py(v);
        s += "<line x1=\"" + num(x0) + "\" y1=\"" + num(y) + "\" x2=\"" + num(x1) + "\" y2=\"" + num(y) +
             "\" stroke=\"#e5e5e5\"/>";
        s += "<text x=\"" + num(x0 - 6) + "\" y=\"" + num(y + 4) + "\" text-anchor=\"end\" fill=\"#444\">" +
             escape(tick_label(v, yf, f.yt.step)) + "</text>";
    }
    if (x_ticks)
        for (double v : f.xt.values) {
            const double x = f.px(v);
            s += "<line x1=\"" + num(x) + "\" y1=\"" + num(y0) + "\" x2=\"" + num(x) + "\" y2=\"" + num(y0 + 5) +
                 "\" stroke=\"#444\"/>";
            // A label centred on a tick at an end of the axis would stick out of the chart (the
            // date axes put ticks at both ends): kept inside, at about 7 px a character.
            const std::string label = tick_label(v, xf, f.xt.step);
            const double half = 3.5 * static_cast<double>(label.size());
            const double at = std::max(std::min(x, f.w - 2.0 - half), 2.0 + half);
            s += "<text x=\"" + num(at) + "\" y=\"" + num(y0 + 18) + "\" text-anchor=\"middle\" fill=\"#444\">" +
                 escape(label) + "</text>";
        }
    s += "<line x1=\"" + num(x0) + "\" y1=\"" + num(y0) + "\" x2=\"" + num(x1) + "\" y2=\"" + num(y0) + "\" stroke=\"#444\"/>";
    s += "<line x1=\"" + num(x0) + "\" y1=\"" + num(y0) + "\" x2=\"" + num(x0) + "\" y2=\"" + num(y1) + "\" stroke=\"#444\"/>";
    if (!xl.empty())
        s += "<text x=\"" + num((x0 + x1) / 2) + "\" y=\"" + num(f.h - 8) + "\" text-anchor=\"middle\">" + escape(xl) + "</text>";
    if (!yl.empty())
        s += "<text transform=\"translate(14," + num((y0 + y1) / 2) + ") rotate(-90)\" text-anchor=\"middle\">" + escape(yl) +
             "</text>";
    return s;
}

/// Width in pixels of a label at font size 12 (a wide character, CJK, counts about twice).
template <class = void>
double text_width(std::string_view text) {
    double chars = 0.0;
    for (std::size_t i = 0; i < text.size();) {
        const auto c = static_cast<unsigned char>(text[i]);
        const std::size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        chars += len >= 3 ? 2.0 : 1.0;
        i += len;
    }
    return 7.5 * chars;
}

/// Where the legend's items go: one right-aligned row under the title when it fits, else
/// left-aligned rows that wrap.
struct legend_layout {
    std::vector<std::pair<double, double>> at; ///< per item: x of the swatch, y of the text baseline
    std::size_t rows = 0;
};

template <class = void>
legend_layout layout_legend(const std::vector<std::pair<std::string, std::string>>& items, double w, double top) {
    legend_layout l;
    if (items.empty()) return l;
    std::vector<double> widths;
    double total = 0.0;
    for (const auto& it : items) total += widths.emplace_back(text_width(it.first) + 30.0);
    if (total <= w - 90.0) {
        double x = w - 20.0 - total;
        for (double width : widths) {
            l.at.emplace_back(x, top);
            x += width;
        }
        l.rows = 1;
        return l;
    }
    double x = 60.0, y = top;
    l.rows = 1;
    for (double width : widths) {
        if (x + width > w - 10.0 && x > 60.0) {
            x = 60.0;
            y += 16.0;
            ++l.rows;
        }
        l.at.emplace_back(x, y);
        x += width;
    }
    return l;
}

/// The legend: coloured swatches and names (layout_legend).
template <class = void>
std::string legend(const std::vector<std::pair<std::string, std::string>>& items, double w, double top) {
    const legend_layout l = layout_legend(items, w, top);
    std::string s;
    for (std::size_t i = 0; i < items.size(); ++i) {
        const auto [x, y] = l.at[i];
        s += "<rect x=\"" + num(x) + "\" y=\"" + num(y - 9) + "\" width=\"12\" height=\"10\" fill=\"" + items[i].second + "\"/>";
        s += "<text x=\"" + num(x + 16) + "\" y=\"" + num(y) + "\" fill=\"#222\">" + escape(items[i].first) + "</text>";
    }
    return s;
}

template <class = void>
void require_same_size(const char* what, std::size_t a, std::size_t b) {
    if (a != b) throw argument_error(pipecast::detail::message("svg: ", what, ": ", a, " x values but ", b, " y values"));
}

} // namespace detail

/// Draws a line chart. Non-finite points are left out.
/// @throws argument_error when a series' x and y (or a band's x, lo, hi) differ in length.
template <class = void>
[[nodiscard]] std::string render(const line_chart& c) {
    double xlo = std::numeric_limits<double>::infinity(), xhi = -xlo, ylo = xlo, yhi = -xlo;
    auto see = [&](double x, double y) {
        if (!(std::isfinite(x) && std::isfinite(y))) return;
        xlo = std::min(xlo, x), xhi = std::max(xhi, x), ylo = std::min(ylo, y), yhi = std::max(yhi, y);
    };
    for (const auto& b : c.bands) {
        detail::require_same_size(b.name.c_str(), b.x.size(), b.lo.size());
        detail::require_same_size(b.name.c_str(), b.x.size(), b.hi.size());
        for (std::size_t i = 0; i < b.x.size(); ++i) see(b.x[i], b.lo[i]), see(b.x[i], b.hi[i]);
    }
    for (const auto& l : c.lines) {
        detail::require_same_size(l.name.c_str(), l.x.size(), l.y.size());
        for (std::size_t i = 0; i < l.x.size(); ++i) see(l.x[i], l.y[i]);
    }
    for (const auto& r : c.references)
        if (std::isfinite(r.y)) ylo = std::min(ylo, r.y), yhi = std::max(yhi, r.y);
    if (!std::isfinite(xlo)) xlo = 0.0, xhi = 1.0;
    if (!std::isfinite(ylo)) ylo = 0.0, yhi = 1.0;
    if (c.x_min) xlo = *c.x_min;
    if (c.x_max) xhi = *c.x_max;
    if (c.y_min) ylo = *c.y_min;
    if (c.y_max) yhi = *c.y_max;
    std::vector<std::pair<std::string, std::string>> legend;
    for (const auto& b : c.bands)
        if (!b.name.empty()) legend.emplace_back(b.name, b.color);
    for (const auto& l : c.lines)
        if (!l.name.empty()) legend.emplace_back(l.name, l.color);
    detail::frame f;
    f.w = c.width;
    f.h = c.height;
    f.top += 16.0 * static_cast<double>(std::max<std::size_t>(detail::layout_legend(legend, c.width, 36.0).rows, 1) - 1);
    f.xt = nice_ticks(xlo, std::max(xlo, xhi), c.x_format == axis_format::date ? 6 : 8);
    if (c.x_format == axis_format::date) { // whole days, ticks at the data range's ends and between
        f.xt.lo = xlo, f.xt.hi = std::max(xhi, xlo + 1.0);
        f.xt.values.clear();
        const double span = f.xt.hi - f.xt.lo;
        const double step = span > 120 ? 28.0 : span > 45 ? 14.0 : 7.0;
        for (double v = f.xt.lo; v <= f.xt.hi + 1e-9; v += step) f.xt.values.push_back(v);
        f.xt.step = step;
    }
    f.yt = nice_ticks(ylo, std::max(ylo, yhi), 5);
    if (c.y_min) f.yt.lo = std::min(f.yt.lo, *c.y_min);
    std::string s = detail::open_svg(c.title, c.width, c.height, "line");
    s += detail::axes(f, c.x_format, c.y_format, c.x_label, c.y_label);
    for (const auto& b : c.bands) {
        std::string d;
        for (std::size_t i = 0; i < b.x.size(); ++i)
            if (std::isfinite(b.x[i]) && std::isfinite(b.hi[i]))
                d += (d.empty() ? "M" : "L") + detail::num(f.px(b.x[i])) + "," + detail::num(f.py(b.hi[i]));
        for (std::size_t i = b.x.size(); i-- > 0;)
            if (std::isfinite(b.x[i]) && std::isfinite(b.lo[i])) d += "L" + detail::num(f.px(b.x[i])) + "," + detail::num(f.py(b.lo[i]));
        if (!d.empty())
            s += "<path class=\"mark\" d=\"" + d + "Z\" fill=\"" + b.color + "\" fill-opacity=\"0.25\" stroke=\"none\"/>";
    }
    for (const auto& r : c.references) {
        if (!std::isfinite(r.y)) continue;
        const double y = f.py(r.y);
        s += "<line class=\"mark\" x1=\"" + detail::num(f.left) + "\" y1=\"" + detail::num(y) + "\" x2=\"" +
             detail::num(f.w - f.right) + "\" y2=\"" + detail::num(y) + "\" stroke=\"" + r.color +
             "\" stroke-width=\"1.5\" stroke-dasharray=\"6,4\"/>";
        s += "<text x=\"" + detail::num(f.w - f.right - 4) + "\" y=\"" + detail::num(y - 5) + "\" text-anchor=\"end\" fill=\"" +
             r.color + "\">" + escape(r.label) + "</text>";
    }
    for (const auto& l : c.lines) {
        if (l.dots) {
            for (std::size_t i = 0; i < l.x.size(); ++i)
                if (std::isfinite(l.x[i]) && std::isfinite(l.y[i]))
                    s += "<circle class=\"mark\" cx=\"" + detail::num(f.px(l.x[i])) + "\" cy=\"" + detail::num(f.py(l.y[i])) +
                         "\" r=\"" + detail::num(l.radius) + "\" fill=\"" +
                         (i < l.point_colors.size() ? l.point_colors[i] : l.color) + "\" fill-opacity=\"0.7\"/>";
        } else {
            std::string d;
            for (std::size_t i = 0; i < l.x.size(); ++i)
                if (std::isfinite(l.x[i]) && std::isfinite(l.y[i]))
                    d += (d.empty() ? "M" : "L") + detail::num(f.px(l.x[i])) + "," + detail::num(f.py(l.y[i]));
            if (!d.empty())
                s += "<path class=\"mark\" d=\"" + d + "\" fill=\"none\" stroke=\"" + l.color + "\" stroke-width=\"2\"" +
                     (l.dashed ? " stroke-dasharray=\"5,3\"" : "") + "/>";
        }
    }
    s += detail::legend(legend, c.width, 36.0);
    return s + "</svg>";
}

/// Grouped horizontal bars: one row per category, one bar per series (the funnel: actual
/// and ideal value per stage).
struct bar_chart {
    std::string title, x_label;
    axis_format x_format = axis_format::number;
    std::vector<std::string> categories;      ///< row labels, top to bottom
    std::vector<std::string> series_names;
    std::vector<std::string> colors;          ///< per series
    std::vector<std::vector<double>> values;  ///< [series][category], >= 0
    std::vector<std::string> notes;           ///< per category, written after the bars ("" for none)
    double width = 720.0;
};

/// Draws grouped horizontal bars.
/// @throws argument_error when a series has a different number of values than categories,
///   or a value is negative or not finite.
template <class = void>
[[nodiscard]] std::string render(const bar_chart& c) {
    double hi = 0.0;
    for (std::size_t k = 0; k < c.values.size(); ++k) {
        detail::require_same_size("bar_chart", c.categories.size(), c.values[k].size());
        for (double v : c.values[k]) {
            if (!(std::isfinite(v) && v >= 0.0))
                throw argument_error(pipecast::detail::message("svg: bar_chart '", c.title, "': bad value ", v));
            hi = std::max(hi, v);
        }
    }
    const double row = 14.0 * static_cast<double>(std::max<std::size_t>(c.values.size(), 1)) + 14.0;
    std::size_t label_chars = 4;
    for (const auto& l : c.categories) label_chars = std::max(label_chars, l.size());
    detail::frame f;
    f.left = std::min(220.0, 8.0 * static_cast<double>(label_chars) + 16.0);
    f.right = 110.0;
    f.w = c.width;
    f.h = f.top + f.bottom + row * static_cast<double>(c.categories.size());
    f.xt = nice_ticks(0.0, hi, 5);
    f.yt = nice_ticks(0.0, 1.0, 1);
    std::string s = detail::open_svg(c.title, f.w, f.h, "bar");
    for (double v : f.xt.values) {
        const double x = f.px(v);
        s += "<line x1=\"" + detail::num(x) + "\" y1=\"" + detail::num(f.top) + "\" x2=\"" + detail::num(x) + "\" y2=\"" +
             detail::num(f.h - f.bottom) + "\" stroke=\"#e5e5e5\"/>";
        s += "<text x=\"" + detail::num(x) + "\" y=\"" + detail::num(f.h - f.bottom + 16) + "\" text-anchor=\"middle\" fill=\"#444\">" +
             escape(tick_label(v, c.x_format, f.xt.step)) + "</text>";
    }
    for (std::size_t i = 0; i < c.categories.size(); ++i) {
        const double y0 = f.top + row * static_cast<double>(i) + 7.0;
        s += "<text x=\"" + detail::num(f.left - 6) + "\" y=\"" + detail::num(y0 + row / 2 - 3) + "\" text-anchor=\"end\">" +
             escape(c.categories[i]) + "</text>";
        for (std::size_t k = 0; k < c.values.size(); ++k) {
            const double w = f.px(c.values[k][i]) - f.left;
            s += "<rect class=\"mark\" x=\"" + detail::num(f.left) + "\" y=\"" + detail::num(y0 + 14.0 * static_cast<double>(k)) +
                 "\" width=\"" + detail::num(std::max(w, 0.5)) + "\" height=\"12\" fill=\"" +
                 (k < c.colors.size() ? c.colors[k] : std::string("#888")) + "\"><title>" +
                 escape((k < c.series_names.size() ? c.series_names[k] + ": " : std::string()) +
                        tick_label(c.values[k][i], c.x_format)) +
                 "</title></rect>";
        }
        if (i < c.notes.size() && !c.notes[i].empty())
            s += "<text x=\"" + detail::num(f.w - f.right + 6) + "\" y=\"" + detail::num(y0 + row / 2 - 3) + "\" fill=\"#b22\">" +
                 escape(c.notes[i]) + "</text>";
    }
    s += "<line x1=\"" + detail::num(f.left) + "\" y1=\"" + detail::num(f.top) + "\" x2=\"" + detail::num(f.left) + "\" y2=\"" +
         detail::num(f.h - f.bottom) + "\" stroke=\"#444\"/>";
    if (!c.x_label.empty())
        s += "<text x=\"" + detail::num((f.left + f.w - f.right) / 2) + "\" y=\"" + detail::num(f.h - 8) +
             "\" text-anchor=\"middle\">" + escape(c.x_label) + "</text>";
    std::vector<std::pair<std::string, std::string>> legend;
    for (std::size_t k = 0; k < c.series_names.size(); ++k)
        legend.emplace_back(c.series_names[k], k < c.colors.size() ? c.colors[k] : std::string("#888"));
    s += detail::legend(legend, f.w, 36.0);
    return s + "</svg>";
}

/// A histogram of equal-width bins, with vertical marker lines (the quota).
struct histogram_chart {
    std::string title, x_label, y_label = "share of paths";
    axis_format x_format = axis_format::number;
    double lower = 0.0, bin_width = 0.0;
    std::vector<double> shares;            ///< per bin, in [0, 1]
    std::vector<std::string> bin_colors;   ///< per bin (empty: one colour)
    std::string color = "#1f77b4";
    std::vector<reference_line> markers;   ///< vertical lines at x = y field
    double width = 720.0, height = 320.0;
};

/// Draws a histogram.
/// @throws argument_error for a negative or non-finite share or bin width.
template <class = void>
[[nodiscard]] std::string render(const histogram_chart& c) {
    if (!(std::isfinite(c.bin_width) && c.bin_width >= 0.0) || !std::isfinite(c.lower))
        throw argument_error(pipecast::detail::message("svg: histogram '", c.title, "': bad bins ", c.lower, ", ", c.bin_width));
    double top = 0.0;
    for (double v : c.shares) {
        if (!(std::isfinite(v) && v >= 0.0))
            throw argument_error(pipecast::detail::message("svg: histogram '", c.title, "': bad share ", v));
        top = std::max(top, v);
    }
    const double width = c.bin_width > 0.0 ? c.bin_width : 1.0;
    double xlo = c.lower, xhi = c.lower + width * static_cast<double>(std::max<std::size_t>(c.shares.size(), 1));
    for (const auto& m : c.markers)
        if (std::isfinite(m.y)) xlo = std::min(xlo, m.y), xhi = std::max(xhi, m.y);
    detail::frame f;
    f.w = c.width;
    f.h = c.height;
    f.xt = nice_ticks(xlo, xhi, 8);
    f.yt = nice_ticks(0.0, std::max(top, 1e-3), 5);
    std::string s = detail::open_svg(c.title, c.width, c.height, "histogram");
    s += detail::axes(f, c.x_format, axis_format::percent, c.x_label, c.y_label);
    for (std::size_t i = 0; i < c.shares.size(); ++i) {
        const double x0 = f.px(c.lower + width * static_cast<double>(i)), x1 = f.px(c.lower + width * static_cast<double>(i + 1));
        const double y = f.py(c.shares[i]), y0 = f.py(0.0);
        s += "<rect class=\"mark\" x=\"" + detail::num(x0) + "\" y=\"" + detail::num(y) + "\" width=\"" +
             detail::num(std::max(x1 - x0 - 1.0, 0.5)) + "\" height=\"" + detail::num(std::max(y0 - y, 0.0)) + "\" fill=\"" +
             (i < c.bin_colors.size() ? c.bin_colors[i] : c.color) + "\"/>";
    }
    for (const auto& m : c.markers) {
        if (!std::isfinite(m.y)) continue;
        const double x = f.px(m.y);
        s += "<line class=\"mark\" x1=\"" + detail::num(x) + "\" y1=\"" + detail::num(f.top) + "\" x2=\"" + detail::num(x) +
             "\" y2=\"" + detail::num(f.h - f.bottom) + "\" stroke=\"" + m.color + "\" stroke-width=\"2\" stroke-dasharray=\"6,4\"/>";
        s += "<text x=\"" + detail::num(x + 4) + "\" y=\"" + detail::num(f.top + 12) + "\" fill=\"" + m.color + "\">" +
             escape(m.label) + "</text>";
    }
    return s + "</svg>";
}

} // namespace pipecast::svg
