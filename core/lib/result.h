// Result<T>: a value or an Errno. Errors propagate with TRY; the conversion to -errno happens
// once, in the syscall dispatcher.
#pragma once

#include <new>

#include "core/lib/assert.h"
#include "core/lib/errno.h"
#include "core/lib/types.h"

namespace tandem {

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(const T& value) : m_ok(true) { new (&m_value) T(value); }
  Result(T&& value) : m_ok(true) { new (&m_value) T(move(value)); }
  Result(Errno error) : m_ok(false), m_error(error) {}
  Result(const Result& other) : m_ok(other.m_ok) {
    if (m_ok) new (&m_value) T(other.m_value); else m_error = other.m_error;
  }
  Result& operator=(const Result&) = delete;
  ~Result() {
    if (m_ok) m_value.~T();
  }

  bool is_error() const { return !m_ok; }
  bool ok() const { return m_ok; }
  Errno error() const {
    VERIFY(!m_ok);
    return m_error;
  }
  T& value() {
    VERIFY(m_ok);
    return m_value;
  }
  const T& value() const {
    VERIFY(m_ok);
    return m_value;
  }
  T release_value() {
    VERIFY(m_ok);
    return move(m_value);
  }

 private:
  bool m_ok;
  union {
    T m_value;
    Errno m_error;
  };
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() : m_error(static_cast<Errno>(0)) {}
  Result(Errno error) : m_error(error) {}
  bool is_error() const { return m_error != static_cast<Errno>(0); }
  bool ok() const { return !is_error(); }
  Errno error() const {
    VERIFY(is_error());
    return m_error;
  }
  void release_value() {}

 private:
  Errno m_error;
};

}  // namespace tandem

// Evaluates a Result; on error returns the error from the enclosing function, otherwise yields
// the value.
#define TRY(expression)                                 \
  ({                                                    \
    auto _tandem_result = (expression);                 \
    if (_tandem_result.is_error()) return _tandem_result.error(); \
    _tandem_result.release_value();                     \
  })
