// Interpreter scripts (execve(2) "Interpreter scripts"): a file whose first line is
// `#!interpreter [optional-arg]` is run as the interpreter with the script's name among its
// arguments. The line parser is a pure function over the file's first bytes; ScriptArgs
// rewrites argv for each script level on top of the caller's ExecArgs.
#pragma once

#include "core/exec/elf.h"
#include "core/lib/result.h"
#include "core/lib/types.h"

namespace tandem {

// How much of a script's head execve looks at for the `#!` line (Linux's BINPRM_BUF_SIZE).
inline constexpr usize kScriptLineBytes = 256;
// How many scripts execve goes through before the program it finally loads: a sixth script
// in a chain is ELOOP, as on Linux (its exec loop looks at files 0 to 5).
inline constexpr u32 kMaxScriptDepth = 5;

struct ScriptLine {
  const char* interpreter;  // the path as written; "" for a file that holds only "#!"
  const char* argument;     // null when the line has none
};

// Whether a file whose first `available` bytes are `head` is a script.
bool script_is_script(const u8* head, usize available);

// Parses the `#!` line of a file whose first `available` bytes are `head`. The line's bytes go
// to `line` (kScriptLineBytes bytes, NUL-padded past the file's end as execve reads it), and
// the strings returned point into it. ENOEXEC when no interpreter is named, or when the line
// does not end inside the buffer and the interpreter's name may have been cut (a cut argument
// is kept cut: the interpreter reads the script itself).
Result<ScriptLine> script_parse(const u8* head, usize available, char* line);

// The argv of a program reached through scripts: for each level the interpreter, its optional
// argument and the name the script was reached by go in front, and the previous argv[0] goes.
// The environment passes through. The strings given to add_level must outlive this object.
class ScriptArgs final : public ExecArgs {
 public:
  // `filename` names the first script as execve was given it.
  ScriptArgs(ExecArgs& inner, const char* filename) : m_inner(inner), m_filename(filename) {}
  TANDEM_NONCOPYABLE(ScriptArgs);

  void add_level(const ScriptLine& line);

  usize count(bool env) const override;
  usize length(bool env, usize i) const override;
  Result<void> copy(bool env, usize i, usize offset, void* out, usize n) override;
  Result<void> prepare() override { return m_inner.prepare(); }

 private:
  // Every level but the last adds two strings (interpreter, argument) and renames one; the
  // level that finds the sixth script still adds its own before execve fails with ELOOP.
  static constexpr usize kMaxFront = 2 * (kMaxScriptDepth + 1) + 1;

  // How many of the caller's argv entries are dropped: its argv[0], once a script is found.
  usize skipped() const { return m_levels > 0 && m_inner.count(false) > 0 ? 1 : 0; }

  ExecArgs& m_inner;
  const char* m_filename;
  const char* m_front[kMaxFront] = {};
  usize m_front_count = 0;
  u32 m_levels = 0;
};

}  // namespace tandem
