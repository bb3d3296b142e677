#include "sim/virtio/link.h"

#include <algorithm>
#include <cstdlib>

namespace sim {

namespace {

bool parse_time(const std::string& text, uint64_t* out) {
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || value < 0) return false;
  const std::string unit(end);
  double scale;
  if (unit == "ns" || unit.empty()) {
    scale = 1;
  } else if (unit == "us") {
    scale = 1e3;
  } else if (unit == "ms") {
    scale = 1e6;
  } else if (unit == "s") {
    scale = 1e9;
  } else {
    return false;
  }
  if (value * scale > 3.6e12) return false;  // an hour on the wire is a typo
  *out = static_cast<uint64_t>(value * scale);
  return true;
}

}  // namespace

std::string parse_link_faults(const std::string& text, LinkFaults* out) {
  LinkFaults f = *out;
  size_t at = 0;
  while (at < text.size()) {
    size_t comma = text.find(',', at);
    if (comma == std::string::npos) comma = text.size();
    const std::string item = text.substr(at, comma - at);
    at = comma + 1;
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string::npos) return "'" + item + "': expected NAME=VALUE";
    const std::string name = item.substr(0, eq), value = item.substr(eq + 1);
    double* probability = name == "drop"      ? &f.drop
                          : name == "dup"     ? &f.dup
                          : name == "reorder" ? &f.reorder
                          : name == "corrupt" ? &f.corrupt
                                              : nullptr;
    if (probability != nullptr) {
      char* end = nullptr;
      const double p = std::strtod(value.c_str(), &end);
      if (end == value.c_str() || *end != 0 || !(p >= 0 && p <= 1))
        return "'" + item + "': a probability between 0 and 1";
      *probability = p;
    } else if (name == "delay" || name == "jitter") {
      if (!parse_time(value, name == "delay" ? &f.delay_ns : &f.jitter_ns))
        return "'" + item + "': a time such as 200us or 1ms";
    } else {
      return "'" + name + "': not a fault (drop, dup, reorder, corrupt, delay, jitter)";
    }
  }
  *out = f;
  return "";
}

bool Link::chance(double p) {
  if (p <= 0) return false;
  if (p >= 1) return true;
  // 53 random bits: uniform in [0, 1).
  return static_cast<double>(m_rng.next() >> 11) * 0x1.0p-53 < p;
}

void Link::enqueue(std::vector<uint8_t> frame, uint64_t arrival) {
  Flight f{arrival, m_seq++, std::move(frame)};
  auto later = std::upper_bound(m_flight.begin(), m_flight.end(), f, [](const Flight& a, const Flight& b) {
    return a.arrival != b.arrival ? a.arrival < b.arrival : a.seq < b.seq;
  });
  m_flight.insert(later, std::move(f));
}

void Link::send(const std::vector<uint8_t>& frame, uint64_t now) {
  ++m_stats.sent;
  // The decisions are drawn in a fixed order, every one for every frame, so that changing one
  // probability does not shift the random stream the others see.
  const bool drop = chance(m_faults.drop);
  const bool dup = chance(m_faults.dup);
  const bool reorder = chance(m_faults.reorder);
  const bool corrupt = chance(m_faults.corrupt);
  const uint64_t jitter = m_faults.jitter_ns != 0 ? m_rng.below(m_faults.jitter_ns + 1) : 0;
  const uint64_t bit = m_rng.next();
  if (drop) {
    ++m_stats.dropped;
    return;
  }
  std::vector<uint8_t> copy = frame;
  if (corrupt && !copy.empty()) {
    ++m_stats.corrupted;
    const uint64_t position = bit % (copy.size() * 8);
    copy[position / 8] ^= static_cast<uint8_t>(1u << (position % 8));
  }
  uint64_t arrival = now + m_faults.delay_ns + jitter;
  if (reorder) {
    ++m_stats.reordered;
    arrival += m_faults.reorder_ns;
  }
  if (dup) {
    ++m_stats.duplicated;
    enqueue(copy, arrival);
  }
  enqueue(std::move(copy), arrival);
}

std::vector<std::vector<uint8_t>> Link::receive(uint64_t now) {
  std::vector<std::vector<uint8_t>> out;
  size_t n = 0;
  while (n < m_flight.size() && m_flight[n].arrival <= now) ++n;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out.push_back(std::move(m_flight[i].frame));
  m_flight.erase(m_flight.begin(), m_flight.begin() + static_cast<std::ptrdiff_t>(n));
  m_stats.delivered += n;
  return out;
}

uint64_t Link::next_arrival() const { return m_flight.empty() ? 0 : m_flight.front().arrival; }

}  // namespace sim
