// src/modules/backend.cpp — names of the two backends, for the CLI and error messages.
#include <string>

#include "common/validate.hpp"
#include "simdattn/attention.hpp"

namespace simdattn {

const char* backend_name(Backend backend) noexcept {
  switch (backend) {
    case Backend::fast:
      return "fast";
    case Backend::reference:
      return "reference";
  }
  return "unknown";
}

Backend parse_backend(const std::string& name) {
  if (name == "fast") return Backend::fast;
  if (name == "reference") return Backend::reference;
  detail::fail_arg("parse_backend: backend (\"", name, "\") must be \"fast\" or \"reference\"");
}

}  // namespace simdattn
