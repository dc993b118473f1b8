#pragma once

#include <utility>
#include <variant>

namespace common {

/// A value or the reason there is none: how per-request failures travel.
template <typename T, typename E> class Result {
public:
  Result(T value) : data_(std::in_place_index<0>, std::move(value)) {}
  Result(E error) : data_(std::in_place_index<1>, std::move(error)) {}

  bool ok() const { return data_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(data_); }
  const T& value() const& { return std::get<0>(data_); }
  T&& value() && { return std::get<0>(std::move(data_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const E& error() const { return std::get<1>(data_); }
  E& error() { return std::get<1>(data_); }

private:
  std::variant<T, E> data_;
};

} // namespace common
