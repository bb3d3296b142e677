// Interpreter scripts: the `#!` line and the argv rewrite, as execve(2) describes them and as
// Linux behaves at the edges (a line longer than the buffer, blanks, a NUL inside the line).
#include "core/exec/script.h"

#include "core/lib/assert.h"

namespace tandem {

namespace {

bool is_blank(char c) { return c == ' ' || c == '\t'; }

// The first index in [from, to) whose byte is not a blank, or `to`.
usize skip_blanks(const char* line, usize from, usize to) {
  while (from < to && is_blank(line[from])) ++from;
  return from;
}

// The first index in [from, to) that ends a word (a blank or a NUL), or `to`.
usize skip_word(const char* line, usize from, usize to) {
  while (from < to && !is_blank(line[from]) && line[from] != 0) ++from;
  return from;
}

}  // namespace

bool script_is_script(const u8* head, usize available) { return available >= 2 && head[0] == '#' && head[1] == '!'; }

Result<ScriptLine> script_parse(const u8* head, usize available, char* line) {
  DEBUG_ASSERT(script_is_script(head, available));
  const usize n = kScriptLineBytes;
  const usize have = min<usize>(available, n);
  copy_bytes(line, head, have);
  fill_bytes(line + have, 0, n - have);

  // Where the line ends: its newline, if the buffer holds one. Otherwise the buffer's last byte,
  // but only when the interpreter's name ends (at a blank or a NUL) inside the buffer: a name
  // that runs to the buffer's end may be cut, and a cut name must not be run.
  usize end = 2;
  while (end < n && line[end] != '\n') ++end;
  if (end == n) {
    const usize name = skip_blanks(line, 2, n);
    if (name == n) return Errno::kENOEXEC;  // blanks to the end of the buffer
    if (skip_word(line, name, n) == n) return Errno::kENOEXEC;
    end = n - 1;
  }
  // Trailing blanks are not part of the argument. line[1] is '!', so this stops by index 2.
  while (is_blank(line[end - 1])) --end;

  const usize name = skip_blanks(line, 2, end);
  if (name == end) return Errno::kENOEXEC;  // "#!" and blanks: no interpreter named

  // Everything after the name and the blanks that follow it is one argument, spaces and all.
  // A NUL ends the name with no argument, as it ends the line for any C string reader.
  ScriptLine result{line + name, nullptr};
  const usize separator = skip_word(line, name, end);
  if (separator < end && line[separator] != 0) {
    const usize argument = skip_blanks(line, separator, end);
    // Trimming left a non-blank at end - 1, so an argument starts before `end`.
    DEBUG_ASSERT(argument < end);
    line[separator] = 0;
    result.argument = line + argument;
  }
  line[end] = 0;
  return result;
}

void ScriptArgs::add_level(const ScriptLine& line) {
  VERIFY(m_levels <= kMaxScriptDepth);
  // The name this script was reached by: execve's filename for the first, then the interpreter
  // path the previous script named (which is argv[0] so far, and is replaced).
  const char* name = m_filename;
  if (m_front_count > 0) {
    name = m_front[0];
    for (usize i = 1; i < m_front_count; ++i) m_front[i - 1] = m_front[i];
    --m_front_count;
  }
  const usize added = line.argument != nullptr ? 3 : 2;
  VERIFY(m_front_count + added <= kMaxFront);
  for (usize i = m_front_count; i > 0; --i) m_front[i - 1 + added] = m_front[i - 1];
  m_front[0] = line.interpreter;
  if (line.argument != nullptr) m_front[1] = line.argument;
  m_front[added - 1] = name;
  m_front_count += added;
  ++m_levels;
}

usize ScriptArgs::count(bool env) const {
  if (env) return m_inner.count(true);
  return m_front_count + m_inner.count(false) - skipped();
}

usize ScriptArgs::length(bool env, usize i) const {
  if (env) return m_inner.length(true, i);
  if (i < m_front_count) return string_length(m_front[i]);
  return m_inner.length(false, i - m_front_count + skipped());
}

Result<void> ScriptArgs::copy(bool env, usize i, usize offset, void* out, usize n) {
  if (env) return m_inner.copy(true, i, offset, out, n);
  if (i < m_front_count) {
    DEBUG_ASSERT(offset + n <= string_length(m_front[i]));
    copy_bytes(out, m_front[i] + offset, n);
    return {};
  }
  return m_inner.copy(false, i - m_front_count + skipped(), offset, out, n);
}

}  // namespace tandem
