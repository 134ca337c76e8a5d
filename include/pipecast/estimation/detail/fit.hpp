// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file estimation/detail/fit.hpp
/// @brief The whole-history fit (internal): per-stage data from the visit log, branch
/// mixtures (EM), recency weights, arrivals and overdispersion; used by fit_history.

#include <pipecast/data/history.hpp>
#include <pipecast/error.hpp>
#include <pipecast/estimation/dwell_fit.hpp>
#include <pipecast/model/dwell.hpp>
#include <pipecast/model/model.hpp>
#include <pipecast/model/stage_graph.hpp>

#include <Eigen/Dense>
#include <boost/math/special_functions/beta.hpp>
#include <boost/math/special_functions/digamma.hpp>
#include <boost/math/special_functions/erf.hpp>
#include <boost/math/special_functions/gamma.hpp>
#include <boost/math/special_functions/trigamma.hpp>
#include <boost/math/tools/roots.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <numbers>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pipecast {

// ---------------------------------------------------------------------------------------

namespace detail {

/// log f(t) of a fitted continuous dwell (the E-step's exit term), in log space throughout.
template <class = void>
[[nodiscard]] double log_pdf(const dwell_distribution& d, double t) {
    constexpr double log_sqrt_2pi = 0.91893853320467274178;
    switch (d.family()) {
    case dwell_family::exponential: return -std::log(d.mean()) - t / d.mean();
    case dwell_family::gamma: {
        const double k = d.shape(), th = d.scale();
        return (k - 1.0) * std::log(t) - t / th - k * std::log(th) - boost::math::lgamma(k, boost_policy{});
    }
    case dwell_family::lognormal: {
        const double z = (std::log(t) - d.log_mu()) / d.log_sigma();
        return -std::log(t) - std::log(d.log_sigma()) - log_sqrt_2pi - 0.5 * z * z;
    }
    case dwell_family::weibull: {
        const double k = d.shape(), x = t / d.scale();
        return std::log(k) - std::log(d.scale()) + (k - 1.0) * std::log(x) - std::pow(x, k);
    }
    default: {
        const double p = pdf(d, t);
        return p > 0.0 ? std::log(p) : -std::numeric_limits<double>::infinity();
    }
    }
}

/// log S(c) of a fitted dwell (the E-step's censored term), without underflow for the
/// lognormal (normal tail series) and −inf only where the survival truly underflows.
template <class = void>
[[nodiscard]] double log_sf(const dwell_distribution& d, double c) {
    if (!(c > 0.0)) return 0.0;
    switch (d.family()) {
    case dwell_family::gamma: {
        const double q = boost::math::gamma_q(d.shape(), c / d.scale(), boost_policy{});
        return q > 0.0 ? std::log(q) : -std::numeric_limits<double>::infinity();
    }
    case dwell_family::lognormal: {
        double lsf = 0.0, h = 0.0;
        normal_tail((std::log(c) - d.log_mu()) / d.log_sigma(), lsf, h);
        return lsf;
    }
    default: return log_survival(d, c);
    }
}

/// The visits of one stage for the branched fit: duration, target (index into the stage's
/// targets, −1 when censored) and recency weight.
struct stage_visits {
    std::vector<double> d;
    std::vector<int> target;
    std::vector<double> w;
};

/// Index of a parametric family in stage_estimate::fits (exponential, gamma, lognormal, weibull).
[[nodiscard]] constexpr int family_index(dwell_family f) noexcept {
    return f == dwell_family::gamma ? 1 : f == dwell_family::lognormal ? 2 : f == dwell_family::weibull ? 3 : 0;
}

/// One EM branch while fitting.
struct em_branch {
    int target = -1;              ///< index into the stage's targets
    bool stalled = false;
    double pi = 0.0;
    std::optional<dwell_distribution> dwell;
    family_fit fit;
    int family = -1;              ///< frozen family index (0..3), −1 while selecting
    std::array<double, 4> family_aic{nan_v, nan_v, nan_v, nan_v};
    bool reduced = false;         ///< too few events: exponential only
};

/// Fits the dwell of one branch from its weighted exits and censored visits: the frozen
/// family, or the least AIC among the families its events allow.
template <class = void>
void fit_branch_dwell(em_branch& b, const dwell_sample& s, const fit_options& opt) {
    auto fit_family = [&](int f) {
        switch (f) {
        case 0: return fit_exponential(s);
        case 1: return fit_gamma(s, opt.max_iterations);
        case 2: return fit_lognormal(s, opt.max_iterations);
        default: return fit_weibull(s, opt.max_iterations);
        }
    };
    b.reduced = !b.stalled && s.n < opt.min_branch_events;
    int forced = -1;
    if (b.stalled || b.reduced) forced = 0;
    else if (opt.dwell == dwell_choice::exponential) forced = 0;
    else if (opt.dwell == dwell_choice::gamma) forced = 1;
    else if (opt.dwell == dwell_choice::lognormal) forced = 2;
    else if (opt.dwell == dwell_choice::weibull) forced = 3;
    else if (b.family >= 0) forced = b.family;
    if (forced >= 0) {
        family_fit f = fit_family(forced);
        if (!f.ok() && forced != 0) f = fit_family(0);
        if (f.ok()) {
            b.fit = std::move(f);
            b.dwell = b.fit.dwell;
            b.family_aic[static_cast<std::size_t>(forced)] = b.fit.aic;
        }
        return;
    }
    std::optional<family_fit> best;
    for (int f = 0; f < 4; ++f) {
        family_fit ff = fit_family(f);
        b.family_aic[static_cast<std::size_t>(f)] = ff.ok() ? ff.aic : nan_v;
        if (ff.ok() && (!best || ff.aic < best->aic)) best = std::move(ff);
    }
    if (best) {
        b.fit = std::move(*best);
        b.dwell = b.fit.dwell;
    }
}

/// Exponential dwell of the stalled branch (the clean-up time) with at least one event
/// (a guard for a stall nobody ever cleaned up: mean = exposure / max(events, 1)).
/// The clean-up is the slowest way out: the mean is at least `floor` (the longest mean of
/// the other branches; the constrained MLE of the exponential is max(θ̂, floor)).
template <class = void>
void fit_stall_dwell(em_branch& b, const dwell_sample& s, double floor) {
    const double events = std::max(s.n, 1.0);
    const double exposure = s.sum_t + s.sum_c;
    family_fit f;
    f.family = dwell_family::exponential;
    const double theta = std::max(exposure > 0.0 ? exposure / events : 1.0, floor);
    f.log_likelihood = s.n > 0.0 ? -s.n * std::log(theta) - exposure / theta : 0.0;
    set_aic(f, 1);
    f.mean = theta;
    f.mean_se = theta / std::sqrt(events);
    f.parameters = {{"mean", theta, f.mean_se}};
    f.status = fit_status::converged;
    f.dwell = dwell_distribution::exponential(theta);
    b.fit = std::move(f);
    b.dwell = b.fit.dwell;
    b.family_aic = {b.fit.aic, nan_v, nan_v, nan_v};
}

/// The EM fit of a branched stage (docs/estimation.md §3). `targets` are stage codes;
/// `stall_target` indexes targets (the losing outcome the stalled branch closes to), −1
/// without a stalled branch.
template <class = void>
[[nodiscard]] branched_estimate fit_branched_em_once(const stage_visits& v, const std::vector<std::string>& target_names,
                                                     int stall_target, const fit_options& opt) {
    branched_estimate out;
    const std::size_t n = v.d.size();
    const int nt = static_cast<int>(target_names.size());
    std::vector<em_branch> br;
    std::vector<double> exit_w(static_cast<std::size_t>(nt), 0.0);
    double total_w = 0.0;
    std::vector<double> exit_d;
    for (std::size_t i = 0; i < n; ++i) {
        total_w += v.w[i];
        if (v.target[i] >= 0) {
            exit_w[static_cast<std::size_t>(v.target[i])] += v.w[i];
            exit_d.push_back(v.d[i]);
        }
    }
    for (int j = 0; j < nt; ++j)
        if (exit_w[static_cast<std::size_t>(j)] > 0.0) {
            br.emplace_back();
            br.back().target = j;
        }
    if (br.empty() || !(total_w > 0.0)) {
        out.status = fit_status::too_few_events;
        out.note = "no exits";
        return out;
    }
    const bool stall = stall_target >= 0;
    if (stall) {
        br.emplace_back();
        br.back().target = stall_target;
        br.back().stalled = true;
    }
    const std::size_t nb = br.size();
    const std::size_t ks = stall ? nb - 1 : nb; // index of the stalled branch

    // Initial responsibilities: exits to the stall target longer than the 95th percentile of
    // all exits start half in the stalled branch, censored visits older than it wholly.
    std::sort(exit_d.begin(), exit_d.end());
    const double q95 = exit_d.empty() ? 0.0 : exit_d[static_cast<std::size_t>(0.95 * static_cast<double>(exit_d.size() - 1))];
    // r[i * nb + k]: responsibility of branch k for visit i
    std::vector<double> r(n * nb, 0.0), la(n * nb, 0.0);
    std::vector<std::size_t> normal_of(static_cast<std::size_t>(nt), nb);
    for (std::size_t k = 0; k < ks; ++k) normal_of[static_cast<std::size_t>(br[k].target)] = k;
    double exits_total = 0.0;
    for (double x : exit_w) exits_total += x;
    for (std::size_t i = 0; i < n; ++i) {
        double* ri = &r[i * nb];
        if (v.target[i] >= 0) {
            const std::size_t k = normal_of[static_cast<std::size_t>(v.target[i])];
            // A target whose exits all weigh 0 (a half-life weight that underflows for a
            // visit centuries before the log's end) has no branch: the visit stays without
            // responsibility, as the E-step leaves a visit no branch explains.
            if (k == nb) continue;
            if (stall && v.target[i] == stall_target && v.d[i] > q95) ri[ks] = ri[k] = 0.5;
            else ri[k] = 1.0;
        } else if (stall && v.d[i] > q95) {
            ri[ks] = 1.0;
        } else {
            for (std::size_t k = 0; k < ks; ++k) ri[k] = exit_w[static_cast<std::size_t>(br[k].target)] / exits_total;
        }
    }

    std::vector<double> ex_t, ex_w, ce_t, ce_w;
    auto m_step = [&]() -> bool {
        std::vector<double> mass(nb, 0.0);
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t k = 0; k < nb; ++k) mass[k] += v.w[i] * r[i * nb + k];
        for (std::size_t k = 0; k < nb; ++k) br[k].pi = mass[k] / total_w;
        if (stall && br[ks].pi > opt.max_stall_share) { // constrained M-step: cap, rescale the rest
            const double rest = 1.0 - br[ks].pi;
            for (std::size_t k = 0; k < ks; ++k) br[k].pi *= rest > 0.0 ? (1.0 - opt.max_stall_share) / rest : 0.0;
            br[ks].pi = opt.max_stall_share;
        }
        for (std::size_t k = 0; k < nb; ++k) {
            ex_t.clear();
            ex_w.clear();
            ce_t.clear();
            ce_w.clear();
            for (std::size_t i = 0; i < n; ++i) {
                const double wi = v.w[i] * r[i * nb + k];
                if (!(wi > 1e-12 * v.w[i])) continue;
                if (v.target[i] >= 0) {
                    ex_t.push_back(v.d[i]);
                    ex_w.push_back(wi);
                } else {
                    ce_t.push_back(v.d[i]);
                    ce_w.push_back(wi);
                }
            }
            const dwell_sample s(ex_t, ce_t, opt.min_dwell, ex_w, ce_w);
            if (br[k].stalled) {
                double floor = 0.0;
                for (std::size_t j = 0; j < ks; ++j)
                    if (br[j].dwell) floor = std::max(floor, br[j].dwell->mean());
                fit_stall_dwell(br[k], s, floor);
            } else {
                fit_branch_dwell(br[k], s, opt);
            }
            if (!br[k].dwell) return false;
        }
        return true;
    };
    // E-step: log a_ik (without π), responsibilities and the observed log-likelihood.
    auto e_step = [&]() {
        double ll = 0.0;
        std::vector<double> lp(nb);
        for (std::size_t k = 0; k < nb; ++k) lp[k] = br[k].pi > 0.0 ? std::log(br[k].pi) : -std::numeric_limits<double>::infinity();
        for (std::size_t i = 0; i < n; ++i) {
            double* li = &la[i * nb];
            double* ri = &r[i * nb];
            double top = -std::numeric_limits<double>::infinity();
            const double x = std::max(v.d[i], opt.min_dwell);
            for (std::size_t k = 0; k < nb; ++k) {
                if (v.target[i] >= 0) li[k] = br[k].target == v.target[i] ? log_pdf(*br[k].dwell, x) : -std::numeric_limits<double>::infinity();
                else li[k] = log_sf(*br[k].dwell, v.d[i]);
                top = std::max(top, li[k] + lp[k]);
            }
            if (top == -std::numeric_limits<double>::infinity()) {
                // no branch explains it (every density or survival underflows): keep the
                // previous responsibilities and leave it out of the likelihood
                continue;
            }
            double sum = 0.0;
            for (std::size_t k = 0; k < nb; ++k) sum += (ri[k] = std::exp(li[k] + lp[k] - top));
            for (std::size_t k = 0; k < nb; ++k) ri[k] /= sum;
            ll += v.w[i] * (top + std::log(sum));
        }
        return ll;
    };

    // EM to convergence with the families as they are (frozen: b.family >= 0).
    struct run_result {
        double ll = -std::numeric_limits<double>::infinity();
        fit_status status = fit_status::failed;
        std::size_t iterations = 0;
    };
    auto run = [&](std::size_t max_it) {
        run_result res;
        for (std::size_t it = 1; it <= max_it; ++it) {
            res.iterations = it;
            if (!m_step()) {
                res.status = fit_status::failed;
                return res;
            }
            const double next = e_step();
            if (!std::isfinite(next)) {
                res.status = fit_status::failed;
                return res;
            }
            const bool small = std::abs(next - res.ll) <= opt.em_tolerance * (1.0 + std::abs(next));
            res.ll = next;
            if (small) {
                res.status = fit_status::converged;
                return res;
            }
        }
        res.status = fit_status::max_iterations;
        return res;
    };
    auto parameters = [&] {
        double p = static_cast<double>(nb - 1);
        for (const auto& b : br) p += static_cast<double>(b.fit.parameters.size());
        return p;
    };
    // 1. Three EM steps choosing each branch's family by its complete-data AIC, then frozen.
    run_result res = run(std::min<std::size_t>(3, opt.em_max_iterations));
    for (auto& b : br) b.family = b.fit.ok() ? family_index(b.fit.family) : -1;
    // 2. EM to convergence.
    std::size_t total_it = res.iterations;
    if (res.status != fit_status::failed) {
        res = run(opt.em_max_iterations);
        total_it += res.iterations;
    }
    // 3. Family per branch by the AIC of the observed (mixture) likelihood: each other family
    //    of one branch at a time, EM from the current responsibilities, kept if the AIC drops.
    const bool search = opt.dwell == dwell_choice::aic || opt.dwell == dwell_choice::kaplan_meier;
    if (res.status == fit_status::converged && search) {
        double best_aic = 2.0 * parameters() - 2.0 * res.ll;
        for (std::size_t k = 0; k < nb; ++k) {
            // branches with a target of their own: their exits are theirs, the complete-data
            // choice stands; the search is for those sharing a target (the stall target)
            bool shared = false;
            for (std::size_t j = 0; j < nb; ++j) shared = shared || (j != k && br[j].target == br[k].target);
            if (br[k].stalled || br[k].reduced || !shared) continue;
            const int current = br[k].family;
            br[k].family_aic = {nan_v, nan_v, nan_v, nan_v};
            br[k].family_aic[static_cast<std::size_t>(current)] = best_aic;
            for (int f = 0; f < 4; ++f) {
                if (f == current) continue;
                const auto saved_br = br;
                const auto saved_r = r, saved_la = la;
                br[k].family = f;
                const run_result trial = run(opt.em_max_iterations);
                total_it += trial.iterations;
                const double aic = 2.0 * parameters() - 2.0 * trial.ll;
                if (trial.status == fit_status::converged && br[k].fit.ok() && family_index(br[k].fit.family) == f)
                    br[k].family_aic[static_cast<std::size_t>(f)] = aic;
                if (trial.status == fit_status::converged && aic < best_aic - 1e-9 && family_index(br[k].fit.family) == f) {
                    best_aic = aic;
                    res = trial;
                } else {
                    br = saved_br;
                    r = saved_r;
                    la = saved_la;
                }
            }
        }
    }
    out.status = res.status;
    if (res.status == fit_status::failed) out.note += "EM failed (a branch dwell could not be fitted or the likelihood is not finite); ";
    const double ll = res.ll;
    const std::size_t it = total_it;
    out.iterations = it;
    out.log_likelihood = ll;

    // Standard errors of π: sandwich H⁻¹ J H⁻¹ with H = Σ w s sᵀ, J = Σ w² s sᵀ, s_k =
    // (a_k − a_K)/L for the free π_1..π_{K−1} (dwells held at their estimates).
    std::vector<double> se(nb, nan_v);
    if (nb == 1) {
        se[0] = 0.0;
    } else if (std::isfinite(ll)) {
        const auto m = static_cast<Eigen::Index>(nb - 1);
        Eigen::MatrixXd h = Eigen::MatrixXd::Zero(m, m), jm = Eigen::MatrixXd::Zero(m, m);
        Eigen::VectorXd sv(m);
        for (std::size_t i = 0; i < n; ++i) {
            const double* li = &la[i * nb];
            double top = -std::numeric_limits<double>::infinity();
            for (std::size_t k = 0; k < nb; ++k)
                if (br[k].pi > 0.0) top = std::max(top, li[k] + std::log(br[k].pi));
            if (top == -std::numeric_limits<double>::infinity()) continue;
            double lsum = 0.0;
            for (std::size_t k = 0; k < nb; ++k)
                if (br[k].pi > 0.0) lsum += std::exp(li[k] + std::log(br[k].pi) - top);
            const double log_l = top + std::log(lsum);
            const double last = std::exp(li[nb - 1] - log_l);
            for (Eigen::Index k = 0; k < m; ++k) sv(k) = std::exp(li[static_cast<std::size_t>(k)] - log_l) - last;
            h.noalias() += v.w[i] * sv * sv.transpose();
            jm.noalias() += v.w[i] * v.w[i] * sv * sv.transpose();
        }
        const Eigen::FullPivLU<Eigen::MatrixXd> lu(h);
        if (lu.isInvertible()) {
            const Eigen::MatrixXd hi = lu.inverse();
            const Eigen::MatrixXd cov = hi * jm * hi;
            double tot = 0.0;
            for (Eigen::Index k = 0; k < m; ++k) se[static_cast<std::size_t>(k)] = std::sqrt(std::max(0.0, cov(k, k)));
            tot = cov.sum();
            se[nb - 1] = std::sqrt(std::max(0.0, tot));
        }
    }

    double params = static_cast<double>(nb - 1);
    for (std::size_t k = 0; k < nb; ++k) {
        auto& b = br[k];
        branch_estimate e;
        e.to = target_names[static_cast<std::size_t>(b.target)];
        e.stalled = b.stalled;
        e.probability = b.pi;
        e.se = se[k];
        for (std::size_t i = 0; i < n; ++i)
            if (v.target[i] >= 0) e.events += v.w[i] * r[i * nb + k];
        e.dwell = b.dwell;
        e.family = b.dwell ? std::string(to_string(b.dwell->family())) : "";
        e.aic = b.fit.aic;
        e.family_aic = b.family_aic;
        params += static_cast<double>(b.fit.parameters.size());
        e.fit = std::move(b.fit);
        out.branches.push_back(std::move(e));
    }
    out.aic = 2.0 * params - 2.0 * ll;
    std::string note;
    if (stall && br[ks].pi >= opt.max_stall_share - 1e-12)
        note += "stall share capped at " + std::to_string(opt.max_stall_share) + "; ";
    for (const auto& b : br)
        if (b.reduced) note += "branch to " + target_names[static_cast<std::size_t>(b.target)] + ": too few events, exponential only; ";
    out.note += note;
    return out;
}

/// The EM fit with a stalled branch when the stage's mixture AIC supports it: fitted with
/// and without, the stall kept if its AIC is lower (it costs two parameters, π and the
/// clean-up mean), so a pipeline without stalled deals gets none.
template <class = void>
[[nodiscard]] branched_estimate fit_branched_em(const stage_visits& v, const std::vector<std::string>& target_names,
                                                int stall_target, const fit_options& opt) {
    branched_estimate with = fit_branched_em_once(v, target_names, stall_target, opt);
    if (stall_target < 0) return with;
    branched_estimate without = fit_branched_em_once(v, target_names, -1, opt);
    const bool with_ok = with.status == fit_status::converged && std::isfinite(with.aic);
    const bool without_ok = without.status == fit_status::converged && std::isfinite(without.aic);
    if (without_ok && (!with_ok || without.aic <= with.aic)) {
        without.note += "no stalled branch: the AIC does not support one (" +
                        (with_ok ? message("AIC ", with.aic, " with, ", without.aic, " without") : std::string("its fit failed")) + "); ";
        without.iterations += with.iterations;
        return without;
    }
    with.iterations += without.iterations;
    return with;
}

} // namespace detail

namespace detail {

/// Fits every family, picks the least AIC among the converged ones.
/// Weights (recency) apply to the parametric fits; the Kaplan–Meier estimate is unweighted.
template <class = void>
void fit_stage_dwell(stage_estimate& st, std::span<const double> exits, std::span<const double> censored,
                     const fit_options& opt, std::span<const double> exit_weights = {},
                     std::span<const double> censored_weights = {}) {
    const dwell_sample s(exits, censored, opt.min_dwell, exit_weights, censored_weights);
    st.fits = {fit_exponential(s), fit_gamma(s, opt.max_iterations), fit_lognormal(s, opt.max_iterations),
               fit_weibull(s, opt.max_iterations)};
    for (std::size_t k = 0; k < st.fits.size(); ++k)
        if (st.fits[k].ok() && (!st.best || st.fits[k].aic < st.fits[*st.best].aic)) st.best = k;
    st.km = fit_kaplan_meier(exits, censored);
    double sum = 0.0;
    for (double x : exits) sum += x;
    st.naive_mean = exits.empty() ? nan_v : sum / static_cast<double>(exits.size());

    const dwell_distribution* best = st.best ? &*st.fits[*st.best].dwell : nullptr;
    auto use_km = [&] {
        if (st.km.time.empty()) return;
        try {
            st.dwell = to_dwell(st.km, best ? opt.tail : km_tail::efron, best);
            st.dwell_source = "kaplan_meier";
        } catch (const model_error&) {
        }
    };
    auto use_family = [&](std::size_t k) {
        if (st.fits[k].ok()) {
            st.dwell = st.fits[k].dwell;
            st.dwell_source = std::string(to_string(st.fits[k].family));
        }
    };
    switch (opt.dwell) {
    case dwell_choice::aic:
        if (st.best) {
            st.dwell = best ? std::optional<dwell_distribution>(*best) : std::nullopt;
            st.dwell_source = "aic";
        } else {
            use_km(); // no parametric family converged: fall back to the empirical estimate
        }
        break;
    case dwell_choice::kaplan_meier: use_km(); break;
    case dwell_choice::exponential: use_family(0); break;
    case dwell_choice::gamma: use_family(1); break;
    case dwell_choice::lognormal: use_family(2); break;
    case dwell_choice::weibull: use_family(3); break;
    }
}

/// Month and year of a day count since 1970-01-01 (proleptic Gregorian; H. Hinnant's algorithm).
template <class = void>
void civil_from_days(long long z, long long& year, unsigned& month) noexcept {
    z += 719468;
    const long long era = (z >= 0 ? z : z - 146096) / 146097;
    const auto doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    month = mp < 10 ? mp + 3 : mp - 9;
    year = static_cast<long long>(yoe) + era * 400 + (month <= 2 ? 1 : 0);
}

/// The shock period of time t (model time unit; a dated log counts days since 1970-01-01):
/// the calendar quarter, year · 4 + (quarter − 1), when `period` is NaN, else ⌊t / period⌋.
/// One rule for the overdispersion estimate and the nowcast (nowcast.hpp).
template <class = void>
[[nodiscard]] long long shock_period_key(double t, double period, double days_unit) noexcept {
    if (!std::isnan(period)) return static_cast<long long>(std::floor(t / period));
    long long y;
    unsigned m;
    civil_from_days(static_cast<long long>(std::floor(t * days_unit)), y, m);
    return y * 4 + (m - 1) / 3;
}

/// The Aalen–Johansen estimate of one stage: per target, the increments of the cumulative
/// incidence F_j at the distinct exit times; leftover = S(τ) after the last exit time τ.
struct aalen_johansen {
    std::vector<std::vector<double>> time, mass; ///< per target
    double leftover = 1.0, last_event = 0.0;
};
template <class = void>
[[nodiscard]] aalen_johansen fit_aalen_johansen(const stage_visits& v, std::size_t targets) {
    aalen_johansen aj;
    aj.time.resize(targets);
    aj.mass.resize(targets);
    std::vector<std::size_t> order(v.d.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return v.d[a] < v.d[b]; });
    double at_risk = 0.0;
    for (double w : v.w) at_risk += w;
    double s = 1.0;
    std::vector<double> d(targets, 0.0);
    for (std::size_t i = 0; i < order.size();) {
        const double t = v.d[order[i]];
        std::fill(d.begin(), d.end(), 0.0);
        double events = 0.0, leaving = 0.0;
        std::size_t j = i;
        for (; j < order.size() && v.d[order[j]] == t; ++j) {
            const std::size_t o = order[j];
            leaving += v.w[o];
            if (v.target[o] >= 0) {
                d[static_cast<std::size_t>(v.target[o])] += v.w[o];
                events += v.w[o];
            }
        }
        if (events > 0.0 && at_risk > 0.0) {
            for (std::size_t k = 0; k < targets; ++k)
                if (d[k] > 0.0) {
                    aj.time[k].push_back(t);
                    aj.mass[k].push_back(s * d[k] / at_risk);
                }
            s *= std::max(0.0, 1.0 - events / at_risk);
            aj.last_event = t;
        }
        at_risk -= leaving;
        i = j;
    }
    aj.leftover = s;
    return aj;
}

/// Replaces the parametric branches of `est` by the Aalen–Johansen ones: per target π_j =
/// F_j(τ) and the empirical dwell of its increments; the leftover S(τ) goes to the stalled
/// branch, whose dwell is τ + the clean-up time (the EM's exponential, discretised at 64
/// quantiles), so that a deal older than every exit is a stalled one, never a sure win.
template <class = void>
void use_aalen_johansen(branched_estimate& est, const stage_visits& v, const std::vector<std::string>& names,
                        const std::vector<char>& target_lost, int stall_target) {
    const aalen_johansen aj = fit_aalen_johansen(v, names.size());
    double w = 0.0, w2 = 0.0;
    for (double x : v.w) {
        w += x;
        w2 += x * x;
    }
    const double n_eff = w2 > 0.0 ? w * w / w2 : 0.0;
    double cleanup = aj.last_event > 0.0 ? aj.last_event : 1.0;
    for (const auto& b : est.branches)
        if (b.stalled && b.dwell) cleanup = b.dwell->mean();
    std::vector<branch_estimate> out;
    for (std::size_t j = 0; j < names.size(); ++j) {
        double f = 0.0;
        for (double m : aj.mass[j]) f += m;
        if (!(f > 0.0)) continue;
        branch_estimate b;
        b.to = names[j];
        b.probability = f;
        b.se = n_eff > 0.0 ? std::sqrt(f * (1.0 - f) / n_eff) : nan_v;
        for (std::size_t i = 0; i < v.d.size(); ++i)
            if (v.target[i] == static_cast<int>(j)) b.events += v.w[i];
        std::vector<double> t = aj.time[j], m = aj.mass[j];
        try {
            b.dwell = dwell_distribution::empirical(std::move(t), std::move(m));
        } catch (const model_error&) {
            return; // e.g. every exit at time 0: keep the parametric branches
        }
        b.family = "aalen_johansen";
        out.push_back(std::move(b));
    }
    if (aj.leftover > 0.0) {
        if (stall_target >= 0) {
            std::vector<double> t(64), m(64, 1.0 / 64.0);
            for (std::size_t k = 0; k < 64; ++k)
                t[k] = aj.last_event - cleanup * std::log1p(-(static_cast<double>(k) + 0.5) / 64.0);
            branch_estimate b;
            b.to = names[static_cast<std::size_t>(stall_target)];
            b.stalled = true;
            b.probability = aj.leftover;
            b.se = n_eff > 0.0 ? std::sqrt(aj.leftover * (1.0 - aj.leftover) / n_eff) : nan_v;
            b.dwell = dwell_distribution::empirical(std::move(t), std::move(m));
            b.family = "aalen_johansen";
            out.push_back(std::move(b));
        } else {
            // no stalled branch: the leftover leaves at τ by the largest losing branch
            std::size_t lose = out.size();
            for (std::size_t k = 0; k < out.size(); ++k) {
                const auto j = static_cast<std::size_t>(std::find(names.begin(), names.end(), out[k].to) - names.begin());
                if (target_lost[j] && (lose == out.size() || out[k].probability > out[lose].probability)) lose = k;
            }
            if (lose == out.size()) return;
            auto& b = out[lose];
            std::vector<double> t(b.dwell->values().begin(), b.dwell->values().end()), m(t.size());
            for (std::size_t k = 0; k < t.size(); ++k)
                m[k] = (b.dwell->cumulative()[k] - (k ? b.dwell->cumulative()[k - 1] : 0.0)) * b.probability;
            t.push_back(aj.last_event);
            m.push_back(aj.leftover);
            b.probability += aj.leftover;
            b.dwell = dwell_distribution::empirical(std::move(t), std::move(m));
        }
    }
    est.branches = std::move(out);
    est.note += "aalen_johansen branches; ";
}

/// Logit-scale method-of-moments overdispersion of the forward/lose decision of one stage
/// (docs/estimation.md §8.8): `target_won` flags the targets that count as going forward
/// (a win, or an open stage later in the funnel), `target_lost` the losing outcomes. For a branched stage, losses at time t count as decisions with
/// the probability that they are not stalled ones, and censored visits count by their
/// branch weights (an imputation; periods more than 10% imputed are left out).
template <class = void>
std::optional<overdispersion_estimate> estimate_overdispersion(const stage_estimate& st, const stage_visits& v,
                                                               const std::vector<double>& entered,
                                                               const std::vector<std::string>& names,
                                                               const std::vector<char>& target_won,
                                                               const std::vector<char>& target_lost, double days_unit,
                                                               double period, std::size_t min_periods = 3) {
    std::map<long long, std::array<double, 3>> q; // period -> {wins, losses, imputed}
    const auto* be = st.branched && st.branched->status != fit_status::failed ? &*st.branched : nullptr;
    for (std::size_t i = 0; i < v.d.size(); ++i) {
        auto& c = q[shock_period_key(entered[i], period, days_unit)];
        const int t = v.target[i];
        if (t >= 0) {
            const auto ut = static_cast<std::size_t>(t);
            if (target_won[ut]) {
                c[0] += 1.0;
            } else if (target_lost[ut]) {
                double p = 1.0; // P(a normal loss | lost after d)
                if (be) {
                    double ln = -std::numeric_limits<double>::infinity(), ls = ln;
                    for (const auto& b : be->branches) {
                        if (b.to != names[ut] || !b.dwell || !(b.probability > 0.0)) continue;
                        const double l = std::log(b.probability) + log_pdf(*b.dwell, std::max(v.d[i], 1e-6));
                        (b.stalled ? ls : ln) = std::max(b.stalled ? ls : ln, l);
                    }
                    p = ln == -std::numeric_limits<double>::infinity() ? 0.0 : 1.0 / (1.0 + std::exp(ls - ln));
                }
                c[1] += p;
            }
        } else if (be) {
            double tot = 0.0, win = 0.0, lose = 0.0;
            for (const auto& b : be->branches) {
                if (!b.dwell) continue;
                const double a = b.probability * std::exp(log_sf(*b.dwell, v.d[i]));
                tot += a;
                const auto j = static_cast<std::size_t>(std::find(names.begin(), names.end(), b.to) - names.begin());
                if (j < names.size() && target_won[j]) win += a;
                else if (j < names.size() && target_lost[j] && !b.stalled) lose += a;
            }
            if (tot > 0.0) {
                c[0] += win / tot;
                c[1] += lose / tot;
                c[2] += (win + lose) / tot;
            }
        }
    }
    std::vector<double> y, var;
    double share = 0.0;
    for (const auto& [key, c] : q) {
        const double n = c[0] + c[1];
        if (n < 20.0 || c[2] > 0.1 * n) continue;
        y.push_back(std::log((c[0] + 0.5) / (c[1] + 0.5)));
        var.push_back(1.0 / (c[0] + 0.5) + 1.0 / (c[1] + 0.5));
        share += c[0] / n;
    }
    if (y.size() < std::max<std::size_t>(min_periods, 2)) return std::nullopt;
    overdispersion_estimate o;
    o.stage = st.name;
    o.periods = y.size();
    o.mean_win_share = share / static_cast<double>(y.size());
    double mean = 0.0, vbar = 0.0;
    for (std::size_t i = 0; i < y.size(); ++i) {
        mean += y[i];
        vbar += var[i];
    }
    mean /= static_cast<double>(y.size());
    vbar /= static_cast<double>(y.size());
    double ss = 0.0;
    for (double x : y) ss += (x - mean) * (x - mean);
    o.raw_variance = ss / static_cast<double>(y.size() - 1);
    o.binomial_variance = vbar;
    o.sigma = std::sqrt(std::max(0.0, o.raw_variance - vbar));
    o.period = std::isfinite(period) ? message(period) : "quarter";
    return o;
}

/// The open stages of the visits i with select(i) true in funnel order (stage codes of the
/// log): opt.stage_order when given (checked: open stages of the history, none of the visited
/// ones missing), else by the mean position of their visits in the deals' paths (position 0 at
/// a deal's first selected visit), ties by first appearance. The one rule for the funnel
/// order: fit_selected uses it, and fit_segments takes the whole history's order from it.
/// @throws argument_error on a bad stage_order or no visits.
template <class Select>
[[nodiscard]] std::vector<std::uint32_t> funnel_order(const visit_log& log, const fit_options& opt, Select&& select) {
    const std::size_t ns = log.stage_names.size();
    std::vector<double> pos_sum(ns, 0.0), pos_n(ns, 0.0);
    std::vector<std::size_t> first_seen(ns, std::numeric_limits<std::size_t>::max());
    std::uint32_t cur = no_stage;
    double position = 0.0;
    for (std::size_t i = 0; i < log.size(); ++i) {
        if (!select(i)) continue;
        if (log.deal[i] != cur) {
            cur = log.deal[i];
            position = 0.0;
        }
        const std::uint32_t s = log.stage[i];
        first_seen[s] = std::min(first_seen[s], i);
        pos_sum[s] += position;
        pos_n[s] += 1.0;
        position += 1.0;
    }
    std::vector<std::uint32_t> open;
    if (!opt.stage_order.empty()) {
        for (const auto& nm : opt.stage_order) {
            const auto code = log.find_stage(nm);
            if (!code || !log.stage_open[*code])
                throw argument_error(message("fit_history: stage_order names '", nm, "', not an open stage of the history"));
            open.push_back(*code);
        }
        for (std::uint32_t s = 0; s < ns; ++s)
            if (log.stage_open[s] && pos_n[s] > 0 && std::find(open.begin(), open.end(), s) == open.end())
                throw argument_error(message("fit_history: stage_order misses the open stage '", log.stage_names[s], "'"));
    } else {
        for (std::uint32_t s = 0; s < ns; ++s)
            if (log.stage_open[s] && pos_n[s] > 0) open.push_back(s);
        std::stable_sort(open.begin(), open.end(), [&](std::uint32_t a, std::uint32_t b) {
            const double pa = pos_sum[a] / pos_n[a], pb = pos_sum[b] / pos_n[b];
            return pa != pb ? pa < pb : first_seen[a] < first_seen[b];
        });
    }
    if (open.empty()) throw argument_error("fit_history: the history has no visits");
    return open;
}

/// The recency window of fit_options: visit i counts when it entered at or after end − window.
template <class = void>
[[nodiscard]] bool in_window(const visit_log& log, const fit_options& opt, std::size_t i) noexcept {
    return !(log.entered[i] < log.end_time - opt.window);
}

/// Fits the visits i with select(i) true (visits of one deal are contiguous in the log).
template <class Select>
[[nodiscard]] history_fit fit_selected(const visit_log& log, const fit_options& opt, Select&& select_visit) {
    if (!(opt.prior_count >= 0.0 && std::isfinite(opt.prior_count)))
        throw argument_error(message("fit_history: prior_count must be finite and >= 0, got ", opt.prior_count));
    if (!(std::isfinite(opt.min_dwell) && opt.min_dwell > 0.0))
        throw argument_error(message("fit_history: min_dwell must be positive, got ", opt.min_dwell));
    if (!(opt.window > 0.0))
        throw argument_error(message("fit_history: window must be positive (infinity: all visits), got ", opt.window));
    if (!(opt.half_life > 0.0))
        throw argument_error(message("fit_history: half_life must be positive (infinity: equal weights), got ", opt.half_life));
    if (!(opt.max_stall_share >= 0.0 && opt.max_stall_share < 1.0))
        throw argument_error(message("fit_history: max_stall_share must be in [0, 1), got ", opt.max_stall_share));
    if (!(opt.min_branch_events >= 0.0 && std::isfinite(opt.min_branch_events)))
        throw argument_error(message("fit_history: min_branch_events must be finite and >= 0, got ", opt.min_branch_events));
    if (!(std::isnan(opt.overdispersion_period) || (opt.overdispersion_period > 0.0 && std::isfinite(opt.overdispersion_period))))
        throw argument_error(message("fit_history: overdispersion_period must be positive, got ", opt.overdispersion_period));
    const std::size_t ns = log.stage_names.size();
    history_fit out;
    out.kind = opt.kind;
    out.time_unit = opt.time_unit;
    out.end_time = log.end_time;
    // Recency: the window drops visits that entered before end − window; half-life weights.
    const double end = log.end_time;
    const bool weighted = std::isfinite(opt.half_life);
    auto select = [&](std::size_t i) { return select_visit(i) && in_window(log, opt, i); };
    auto weight = [&](std::size_t i) { return weighted ? std::exp2(-(end - log.entered[i]) / opt.half_life) : 1.0; };

    // One pass: counts, durations per stage.
    std::vector<std::size_t> n_exit(ns, 0), n_cens(ns, 0);
    std::vector<double> entry_count(ns, 0.0), entry_weight(ns, 0.0);
    std::vector<double> deal_amount, deal_weight;
    double start = std::numeric_limits<double>::infinity();
    std::size_t deals = 0, visits = 0;
    {
        std::uint32_t cur = no_stage;
        double amount = nan_v, amount_w = 1.0;
        auto close_deal = [&] {
            if (cur != no_stage && std::isfinite(amount) && amount > 0.0) {
                deal_amount.push_back(amount);
                deal_weight.push_back(amount_w);
            }
        };
        for (std::size_t i = 0; i < log.size(); ++i) {
            if (!select(i)) continue;
            ++visits;
            if (log.deal[i] != cur) {
                close_deal();
                cur = log.deal[i];
                amount = nan_v;
                ++deals;
                // an arrival only if this is the deal's first visit (not cut by the window)
                if (i == 0 || log.deal[i - 1] != log.deal[i]) {
                    entry_count[log.stage[i]] += 1.0;
                    entry_weight[log.stage[i]] += weight(i);
                }
            }
            const std::uint32_t s = log.stage[i];
            // one amount per deal: its last positive finite amount (a lost deal's 0 or blank is not its size)
            if (std::isfinite(log.amount[i]) && log.amount[i] > 0.0) {
                amount = log.amount[i];
                amount_w = weight(i);
            }
            start = std::min(start, log.entered[i]);
            if (log.censored(i)) ++n_cens[s];
            else ++n_exit[s];
        }
        close_deal();
    }
    out.visits = visits;
    out.deals = deals;
    out.start_time = std::isfinite(start) ? start : log.end_time;

    // Open stages in funnel order.
    const std::vector<std::uint32_t> open = funnel_order(log, opt, select);
    std::vector<std::size_t> slot(ns, std::numeric_limits<std::size_t>::max());
    for (std::size_t k = 0; k < open.size(); ++k) slot[open[k]] = k;

    // Outcomes (of the whole log, so that segment models share them): wins first.
    std::vector<std::uint32_t> outcome_codes;
    for (std::uint32_t s = 0; s < ns; ++s)
        if (!log.stage_open[s]) outcome_codes.push_back(s);
    auto is_won = [&](std::uint32_t s) {
        const std::string& nm = log.stage_names[s];
        if (!opt.won.empty()) return std::find(opt.won.begin(), opt.won.end(), nm) != opt.won.end();
        return looks_won(nm);
    };
    for (const auto& w : opt.won)
        if (!log.find_stage(w) || log.stage_open[*log.find_stage(w)])
            throw argument_error(message("fit_history: won names '", w, "', not an outcome of the history"));
    std::stable_partition(outcome_codes.begin(), outcome_codes.end(), is_won);
    for (auto s : outcome_codes) out.outcomes.push_back({log.stage_names[s], is_won(s)});

    // Durations, weights and counts per open stage.
    std::vector<std::vector<double>> exits(open.size()), cens(open.size()), exit_w(open.size()), cens_w(open.size());
    std::vector<stage_visits> sv(open.size());
    std::vector<std::vector<double>> sv_entered(open.size());
    for (std::size_t k = 0; k < open.size(); ++k) {
        exits[k].reserve(n_exit[open[k]]);
        cens[k].reserve(n_cens[open[k]]);
    }
    std::vector<std::vector<double>> counts(open.size(), std::vector<double>(ns, 0.0));
    for (std::size_t i = 0; i < log.size(); ++i) {
        if (!select(i)) continue;
        const std::size_t k = slot[log.stage[i]];
        const double d = log.duration(i);
        const double w = weight(i);
        if (log.censored(i)) {
            cens[k].push_back(d);
            cens_w[k].push_back(w);
        } else {
            exits[k].push_back(d);
            exit_w[k].push_back(w);
            counts[k][log.next[i]] += w;
        }
        if (opt.kind == model_kind::branched && !(log.censored(i) && opt.ignore_censored)) {
            sv[k].d.push_back(d);
            sv[k].target.push_back(log.censored(i) ? -1 : static_cast<int>(log.next[i]));
            sv[k].w.push_back(w);
            sv_entered[k].push_back(log.entered[i]);
        }
    }
    if (opt.ignore_censored)
        for (std::size_t k = 0; k < open.size(); ++k) {
            cens[k].clear();
            cens_w[k].clear();
        }

    // Target order of a stage's branches: open stages in funnel order, then the outcomes.
    std::vector<std::uint32_t> target_order(open);
    target_order.insert(target_order.end(), outcome_codes.begin(), outcome_codes.end());
    std::vector<std::string> target_names;
    std::vector<char> target_won, target_lost;
    std::vector<int> target_of(ns, -1);
    for (auto t : target_order) {
        target_of[t] = static_cast<int>(target_names.size());
        target_names.push_back(log.stage_names[t]);
        target_won.push_back(!log.stage_open[t] && is_won(t) ? 1 : 0);
        target_lost.push_back(!log.stage_open[t] && !is_won(t) ? 1 : 0);
    }

    out.stages.resize(open.size());
    for (std::size_t k = 0; k < open.size(); ++k) {
        stage_estimate& st = out.stages[k];
        const std::uint32_t s = open[k];
        st.name = log.stage_names[s];
        st.exits = exits[k].size();
        st.censored = opt.ignore_censored ? 0 : n_cens[s];
        st.visits = st.exits + st.censored;
        st.weight = 0.0;
        for (double w : exit_w[k]) st.weight += w;
        for (double w : cens_w[k]) st.weight += w;
        // Transition row: observed edges (in stage order: open stages, then outcomes), plus prior edges.
        std::vector<std::string> targets;
        std::vector<double> cnt, pri;
        const auto prior_row = opt.prior.find(st.name);
        auto add_target = [&](std::uint32_t t) {
            double p = counts[k][t] > 0.0 ? opt.prior_count : 0.0;
            if (prior_row != opt.prior.end()) {
                const auto e = prior_row->second.find(log.stage_names[t]);
                if (e != prior_row->second.end()) {
                    if (!(e->second >= 0.0 && std::isfinite(e->second)))
                        throw argument_error(message("fit_history: prior pseudo-count of '", st.name, "' -> '",
                                                     e->first, "' must be finite and >= 0, got ", e->second));
                    p += e->second;
                }
            }
            if (counts[k][t] > 0.0 || p > 0.0) {
                targets.push_back(log.stage_names[t]);
                cnt.push_back(counts[k][t]);
                pri.push_back(p);
            }
        };
        for (auto t : target_order) add_target(t);
        if (prior_row != opt.prior.end())
            for (const auto& [to, alpha] : prior_row->second)
                if (!log.find_stage(to))
                    throw argument_error(message("fit_history: prior names the unknown stage '", to, "'"));
        st.transitions = estimate_transitions(targets, cnt, pri, opt.credible_level);
        if (weighted) fit_stage_dwell(st, exits[k], cens[k], opt, exit_w[k], cens_w[k]);
        else fit_stage_dwell(st, exits[k], cens[k], opt);

        if (opt.kind == model_kind::branched) {
            stage_visits& v = sv[k];
            for (auto& t : v.target)
                if (t >= 0) t = target_of[static_cast<std::size_t>(t)];
            // The stalled branch closes to the losing outcome this stage loses most to
            // (the first losing outcome if it never loses).
            int stall_target = -1;
            if (opt.stall) {
                double most = -1.0;
                for (std::size_t j = 0; j < target_names.size(); ++j) {
                    if (!target_lost[j]) continue;
                    const double c = counts[k][target_order[j]];
                    if (c > most) {
                        most = c;
                        stall_target = static_cast<int>(j);
                    }
                }
            }
            branched_estimate be = fit_branched_em(v, target_names, stall_target, opt);
            if (opt.dwell == dwell_choice::kaplan_meier && be.status != fit_status::failed)
                use_aalen_johansen(be, v, target_names, target_lost, stall_target);
            st.branched = std::move(be);
        }
    }

    // Arrivals: deals per time unit created in each stage (the exposure is the window, or
    // the integral of the half-life weight over the log).
    const double span = std::min(opt.window, log.end_time - out.start_time);
    const double exposure = weighted ? opt.half_life / std::numbers::ln2 * (1.0 - std::exp2(-span / opt.half_life)) : span;
    for (std::uint32_t s = 0; s < ns; ++s)
        if (entry_count[s] > 0.0)
            out.arrivals.push_back({log.stage_names[s], entry_weight[s], exposure > 0.0 ? entry_weight[s] / exposure : nan_v});
    std::stable_sort(out.arrivals.begin(), out.arrivals.end(),
                     [](const arrival_estimate& a, const arrival_estimate& b) { return a.deals > b.deals; });
    const auto entry = static_cast<std::uint32_t>(std::max_element(entry_count.begin(), entry_count.end()) - entry_count.begin());
    out.entry_stage = log.stage_names[entry];
    if (weighted) {
        out.arrival_rate = exposure > 0.0 ? entry_weight[entry] / exposure : nan_v;
    } else {
        out.arrival_rate = span > 0.0 ? entry_count[entry] / span : nan_v;
    }
    // Deal sizes: one amount per deal; empirical (resampled) or lognormal by log-moments.
    out.deal_size_count = deal_amount.size();
    if (!opt.deal_size_lognormal && !deal_amount.empty()) {
        out.deal_size = deal_size_distribution::empirical(deal_amount, deal_weight);
    } else if (deal_amount.size() >= 2) {
        double m = 0.0, m2 = 0.0, wsum = 0.0;
        for (std::size_t i = 0; i < deal_amount.size(); ++i) {
            const double l = std::log(deal_amount[i]);
            m += deal_weight[i] * l;
            m2 += deal_weight[i] * (l * l);
            wsum += deal_weight[i];
        }
        const double n = static_cast<double>(deal_amount.size());
        m /= wsum;
        const double sg = std::sqrt(std::max(0.0, m2 / wsum - m * m) * n / (n - 1.0));
        out.deal_size = deal_size_distribution(std::exp(m), sg);
    }
    // Overdispersion of every stage's forward/lose decision; the model's main σ is the
    // deciding stage's (the most exits to a win).
    {
        std::size_t best = open.size();
        double most = 0.0;
        for (std::size_t k = 0; k < open.size(); ++k) {
            double wins = 0.0;
            for (auto t : outcome_codes)
                if (is_won(t)) wins += counts[k][t];
            if (wins > most) {
                most = wins;
                best = k;
            }
        }
        const double dpu = days_per_unit(opt.time_unit);
        const double period = std::isfinite(opt.overdispersion_period) ? opt.overdispersion_period
                              : log.dates                              ? nan_v
                                                                       : 365.2425 / 4.0 / dpu;
        for (std::size_t k = 0; k < open.size(); ++k) {
            stage_visits v;
            std::vector<double> entered;
            if (opt.kind == model_kind::branched) {
                v = sv[k];
                entered = sv_entered[k];
            } else {
                for (std::size_t i = 0; i < log.size(); ++i) {
                    if (!select(i) || slot[log.stage[i]] != k) continue;
                    v.d.push_back(log.duration(i));
                    v.target.push_back(log.censored(i) ? -1 : target_of[log.next[i]]);
                    v.w.push_back(1.0);
                    entered.push_back(log.entered[i]);
                }
            }
            // forward: a win, or an open stage later in the funnel
            std::vector<char> forward(target_names.size(), 0);
            for (std::size_t j = 0; j < target_names.size(); ++j) {
                const std::uint32_t t = target_order[j];
                forward[j] = target_won[j] || (log.stage_open[t] && slot[t] > k) ? 1 : 0;
            }
            auto e = estimate_overdispersion(out.stages[k], v, entered, target_names, forward, target_lost, dpu, period);
            overdispersion_estimate none;
            none.stage = out.stages[k].name;
            none.period = std::isfinite(period) ? message(period) : "quarter";
            out.stage_overdispersion.push_back(e ? *e : none);
            if (k == best) out.overdispersion = e;
        }
    }
    return out;
}

} // namespace detail

} // namespace pipecast
