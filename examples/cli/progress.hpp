// pipecast command-line tool — the progress line on stderr shared by every long command
// (simulate, fit, backtest, report; issue 12).
//
// Shown once a run has taken more than a second, only when stderr is a terminal (a pipe or a
// file gets nothing); PIPECAST_PROGRESS=1 in the environment shows it anyway, from the
// start (for tests and logs), PIPECAST_PROGRESS=0 never. The line is redrawn in place:
//     fit: fitting the stages [##########          ] 50%  3.2 s, ETA 3.1 s
// A step without a known fraction (one library call) shows the elapsed time only; a
// background thread redraws it four times a second so that a long step is seen to run.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>

#include <unistd.h>

namespace pipecast_cli {

/// 3.25 -> "3.2 s", 75 -> "1 min 15 s".
inline std::string seconds_text(double s) {
    char buf[64];
    if (s < 60.0) std::snprintf(buf, sizeof buf, "%.1f s", s);
    else std::snprintf(buf, sizeof buf, "%d min %02d s", static_cast<int>(s / 60.0), static_cast<int>(s) % 60);
    return buf;
}

class progress_bar {
public:
    /// `what`: the command ("fit"); the line starts with it.
    explicit progress_bar(std::string what) : what_(std::move(what)), start_(clock::now()) {
        const char* env = std::getenv("PIPECAST_PROGRESS");
        const std::string force = env ? env : "";
        forced_ = force == "1" || force == "on" || force == "always";
        enabled_ = force == "0" || force == "off" ? false : forced_ || ::isatty(STDERR_FILENO) != 0;
        if (enabled_) ticker_ = std::thread([this] { tick(); });
    }
    ~progress_bar() { finish(); }
    progress_bar(const progress_bar&) = delete;
    progress_bar& operator=(const progress_bar&) = delete;

    /// Whether the line is drawn at all (a terminal, or PIPECAST_PROGRESS=1).
    [[nodiscard]] bool enabled() const { return enabled_; }

    /// A step whose fraction is not known: the elapsed time only.
    void step(std::string label) {
        const std::lock_guard lock(mutex_);
        label_ = std::move(label);
        fraction_ = -1.0;
        draw_locked();
    }
    /// The fraction done (0..1) of the whole run, with the step's label; the ETA assumes the
    /// rest goes at the pace so far. Returns true (the simulation's callback: go on).
    bool operator()(double fraction, std::string label = {}) {
        const std::lock_guard lock(mutex_);
        if (!label.empty()) label_ = std::move(label);
        fraction_ = fraction < 0.0 ? 0.0 : fraction > 1.0 ? 1.0 : fraction;
        draw_locked();
        return true;
    }
    /// Ends the line (a newline after a drawn line) and stops the redraws.
    void finish() {
        {
            const std::lock_guard lock(mutex_);
            if (done_) return;
            done_ = true;
        }
        wake_.notify_all();
        if (ticker_.joinable()) ticker_.join();
        if (shown_) std::cerr << '\n' << std::flush;
    }

private:
    using clock = std::chrono::steady_clock;

    void tick() {
        std::unique_lock lock(mutex_);
        while (!done_) {
            wake_.wait_for(lock, std::chrono::milliseconds(250));
            if (!done_) draw_locked();
        }
    }
    void draw_locked() {
        if (!enabled_ || done_) return;
        const double t = std::chrono::duration<double>(clock::now() - start_).count();
        if (t < 1.0 && !forced_ && !shown_) return;
        shown_ = true;
        std::string line = what_;
        if (!label_.empty()) line += ": " + label_;
        if (fraction_ >= 0.0) {
            const int width = 30, full = static_cast<int>(fraction_ * width);
            line += " [";
            line.append(static_cast<std::size_t>(full), '#');
            line.append(static_cast<std::size_t>(width - full), ' ');
            char pct[16];
            std::snprintf(pct, sizeof pct, "] %3.0f%%", 100.0 * fraction_);
            line += pct;
        }
        line += "  ";
        line += seconds_text(t);
        if (fraction_ > 0.0 && fraction_ < 1.0) {
            line += ", ETA ";
            line += seconds_text(t * (1.0 - fraction_) / fraction_);
        }
        // Blanks over the rest of a longer earlier line; \r starts the line again.
        const std::size_t n = line.size();
        if (n < last_size_) line.append(last_size_ - n, ' ');
        last_size_ = n;
        std::cerr << '\r' << line << std::flush;
    }

    std::string what_;
    clock::time_point start_;
    bool forced_ = false, enabled_ = false, shown_ = false, done_ = false;
    std::string label_;
    double fraction_ = -1.0;
    std::size_t last_size_ = 0;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::thread ticker_;
};

} // namespace pipecast_cli
