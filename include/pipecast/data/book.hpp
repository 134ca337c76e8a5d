// pipecast — sales-pipeline forecasting
// SPDX-License-Identifier: MIT
#pragma once

/// @file data/book.hpp
/// @brief The book of open deals, stored column by column.
///
/// A book keeps one contiguous array per field (structure of arrays), so a forecast over
/// millions of deals streams the stage, amount and override columns only: a
/// memory-bandwidth-bound pass. Owners, categories and currencies are dictionary-encoded.

#include <pipecast/error.hpp>

#include <cmath>
#include <concepts>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pipecast {

class stage_graph; // model/stage_graph.hpp

/// One open deal, as given by a user.
struct deal {
    std::string id;
    std::string stage;        ///< name of an open stage
    double amount = 0.0;      ///< value, >= 0
    double age = 0.0;         ///< time already spent in the stage (model time unit), >= 0
    std::string owner;        ///< optional
    std::string category;     ///< optional forecast category ("commit", "best case", ...)
    std::string currency;     ///< optional
    std::optional<double> probability; ///< optional override of P(win), in [0, 1]
};

namespace detail {
/// Dictionary encoding of a string column.
class string_dictionary {
public:
    std::uint32_t encode(std::string_view s) {
        const auto it = index_.find(std::string(s));
        if (it != index_.end()) return it->second;
        const auto code = static_cast<std::uint32_t>(names_.size());
        names_.emplace_back(s);
        index_.emplace(names_.back(), code);
        return code;
    }
    [[nodiscard]] const std::vector<std::string>& names() const noexcept { return names_; }

private:
    std::vector<std::string> names_;
    std::unordered_map<std::string, std::uint32_t> index_;
};
} // namespace detail

/// A book of open deals on a given stage graph.
class book {
public:
    using stage_index = std::uint32_t;

    /// An empty book for the open stages of `g` (the book remembers their names so that it
    /// is only ever used with a compatible graph). A template only so that this header needs
    /// no more than a declaration of stage_graph (and not Eigen and Boost.Math with it).
    template <std::same_as<stage_graph> Graph>
    explicit book(const Graph& g) {
        for (const auto& s : g.stages()) stage_names_.push_back(s.name);
    }

    /// Adds a deal. @throws argument_error naming the deal and field: unknown or outcome
    ///   stage, amount negative or not finite, age negative or not finite, override outside [0,1].
    void add(const deal& d) {
        std::size_t s = 0; // a loop, not std::find: <algorithm> would double this header's cost
        while (s < stage_names_.size() && stage_names_[s] != d.stage) ++s;
        if (s == stage_names_.size())
            throw argument_error(detail::message("deal '", d.id, "': stage '", d.stage, "' is not an open stage of the model"));
        add(d.id, s, d.amount, d.age, d.probability, d.owner, d.category, d.currency);
    }

    /// Adds a deal by stage index (the fast path used by readers and generators).
    void add(std::string_view id, std::size_t stage, double amount, double age,
             std::optional<double> probability = std::nullopt, std::string_view owner = {},
             std::string_view category = {}, std::string_view currency = {}) {
        if (stage >= stage_names_.size())
            throw argument_error(detail::message("deal '", id, "': stage index ", stage, " is not an open stage"));
        if (!(std::isfinite(amount) && amount >= 0.0))
            throw argument_error(detail::message("deal '", id, "': amount must be finite and >= 0, got ", amount));
        if (!(std::isfinite(age) && age >= 0.0))
            throw argument_error(detail::message("deal '", id, "': age must be finite and >= 0, got ", age));
        if (probability && !(*probability >= 0.0 && *probability <= 1.0))
            throw argument_error(detail::message("deal '", id, "': probability override must be in [0, 1], got ", *probability));
        ids_.emplace_back(id);
        stage_.push_back(static_cast<stage_index>(stage));
        amount_.push_back(amount);
        age_.push_back(age);
        probability_.push_back(probability ? *probability : std::numeric_limits<double>::quiet_NaN());
        owner_.push_back(owners_.encode(owner));
        category_.push_back(categories_.encode(category));
        currency_.push_back(currencies_.encode(currency));
    }

    void reserve(std::size_t n) {
        ids_.reserve(n);
        stage_.reserve(n);
        amount_.reserve(n);
        age_.reserve(n);
        probability_.reserve(n);
        owner_.reserve(n);
        category_.reserve(n);
        currency_.reserve(n);
    }

    [[nodiscard]] std::size_t size() const noexcept { return ids_.size(); }
    [[nodiscard]] bool empty() const noexcept { return ids_.empty(); }

    /// Names of the open stages of the graph the book was made for.
    [[nodiscard]] const std::vector<std::string>& stage_names() const noexcept { return stage_names_; }
    /// True if the book was made for a graph with the same open stages.
    template <std::same_as<stage_graph> Graph>
    [[nodiscard]] bool compatible_with(const Graph& g) const {
        if (g.open_count() != stage_names_.size()) return false;
        for (std::size_t i = 0; i < stage_names_.size(); ++i)
            if (g.name(i) != stage_names_[i]) return false;
        return true;
    }

    [[nodiscard]] std::span<const std::string> ids() const noexcept { return ids_; }
    [[nodiscard]] std::span<const stage_index> stages() const noexcept { return stage_; }
    [[nodiscard]] std::span<const double> amounts() const noexcept { return amount_; }
    [[nodiscard]] std::span<const double> ages() const noexcept { return age_; }
    /// Probability overrides; NaN where a deal has none.
    [[nodiscard]] std::span<const double> probability_overrides() const noexcept { return probability_; }
    [[nodiscard]] std::span<const std::uint32_t> owners() const noexcept { return owner_; }
    [[nodiscard]] std::span<const std::uint32_t> categories() const noexcept { return category_; }
    [[nodiscard]] std::span<const std::uint32_t> currencies() const noexcept { return currency_; }
    /// Dictionary of owner names: owner_names()[owners()[i]] is deal i's owner ("" = none).
    [[nodiscard]] const std::vector<std::string>& owner_names() const noexcept { return owners_.names(); }
    [[nodiscard]] const std::vector<std::string>& category_names() const noexcept { return categories_.names(); }
    [[nodiscard]] const std::vector<std::string>& currency_names() const noexcept { return currencies_.names(); }

    /// Deal i as a value (convenience; not for hot loops).
    [[nodiscard]] deal at(std::size_t i) const {
        if (i >= size()) throw argument_error(detail::message("book::at: index ", i, " out of range (size ", size(), ")"));
        deal d{ids_[i], stage_names_[stage_[i]], amount_[i], age_[i], owner_names()[owner_[i]],
               category_names()[category_[i]], currency_names()[currency_[i]], std::nullopt};
        if (!std::isnan(probability_[i])) d.probability = probability_[i];
        return d;
    }

private:
    std::vector<std::string> stage_names_;
    std::vector<std::string> ids_;
    std::vector<stage_index> stage_;
    std::vector<double> amount_;
    std::vector<double> age_;
    std::vector<double> probability_;
    std::vector<std::uint32_t> owner_;
    std::vector<std::uint32_t> category_;
    std::vector<std::uint32_t> currency_;
    detail::string_dictionary owners_;
    detail::string_dictionary categories_;
    detail::string_dictionary currencies_;
};

} // namespace pipecast
