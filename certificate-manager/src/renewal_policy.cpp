#include "renewal_policy.hpp"

#include "time_format.hpp"

#include <algorithm>

namespace certmgr {
namespace {

using Duration = common::Clock::TimePoint::duration;

RenewalDecision renewNow(std::string reason, common::Clock::TimePoint now) {
  return RenewalDecision{true, std::move(reason), now};
}

} // namespace

common::Clock::TimePoint renewalTime(common::Clock::TimePoint not_before,
                                     common::Clock::TimePoint not_after) {
  const Duration lifetime = not_after - not_before;
  // Short-lived certificates get relatively more time to recover from a failed renewal.
  if (lifetime <= std::chrono::hours(24 * 10)) {
    return not_before + lifetime / 2;
  }
  return not_before + lifetime * 2 / 3;
}

common::Clock::TimePoint timeInWindow(const RenewalWindow& window, double fraction) {
  if (window.end <= window.start) {
    return window.start;
  }
  fraction = std::clamp(fraction, 0.0, 1.0);
  const auto span = std::chrono::duration<double>(window.end - window.start);
  return window.start + std::chrono::duration_cast<Duration>(span * fraction);
}

RenewalDecision decideRenewal(const RenewalInputs& inputs, common::Clock::TimePoint now) {
  const CurrentPair& current = *inputs.current;
  switch (current.state) {
  case CurrentPair::State::Missing:
    return renewNow("certificate files missing, issuing: " + current.detail, now);
  case CurrentPair::State::Unreadable:
    return renewNow("certificate files unreadable, renewing: " + current.detail, now);
  case CurrentPair::State::KeyMismatch:
    return renewNow("key and certificate do not match, renewing", now);
  case CurrentPair::State::Valid:
    break;
  }

  const CertificateInfo& info = *current.info;
  if (auto mismatch = describeMismatch(inputs.wanted, info.identifiers)) {
    return renewNow("names changed, renewing: " + *mismatch, now);
  }
  if (inputs.rejected) {
    return renewNow("certificate " + *inputs.rejected + ", renewing", now);
  }
  if (info.not_after <= now) {
    return renewNow("certificate expired at " + formatTime(info.not_after) + ", renewing", now);
  }

  if (inputs.window) {
    const auto due = timeInWindow(*inputs.window, inputs.window_fraction);
    if (due <= now) {
      return renewNow("inside the ca's renewal window, renewing: window_start=" +
                          formatTime(inputs.window->start) +
                          " window_end=" + formatTime(inputs.window->end),
                      now);
    }
    return RenewalDecision{false, "renewal not due until " + formatTime(due) + " (ari window)",
                           due};
  }

  const auto due = renewalTime(info.not_before, info.not_after);
  if (due <= now) {
    return renewNow("renewal due since " + formatTime(due) + ", renewing", now);
  }
  return RenewalDecision{false, "renewal not due until " + formatTime(due), due};
}

} // namespace certmgr
