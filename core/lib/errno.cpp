#include "core/lib/errno.h"

namespace tandem {

const char* errno_name(Errno e) {
  switch (e) {
#define TANDEM_ERRNO_CASE(name, value) \
  case Errno::k##name:                 \
    return #name;
    TANDEM_ERRNOS(TANDEM_ERRNO_CASE)
#undef TANDEM_ERRNO_CASE
  }
  return "E?";
}

}  // namespace tandem
