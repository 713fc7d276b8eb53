// tools/cli/cli.cpp — flag parsing, the command registry and the progress bar.
#include "cli.hpp"

#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "simdattn/runtime.hpp"

namespace simdattn::cli {

Args::Args(std::string command, std::vector<std::string> argv)
    : command_(std::move(command)), argv_(std::move(argv)), used_(argv_.size(), false) {}

std::optional<std::string> Args::take_value(const std::string& name) {
  const std::string flag = "--" + name;
  std::optional<std::string> found;
  for (std::size_t i = 0; i < argv_.size(); ++i) {
    if (used_[i]) continue;
    if (argv_[i] == flag) {
      if (i + 1 >= argv_.size() || used_[i + 1])
        throw UsageError{flag + " needs a value"};
      if (found) throw UsageError{flag + " given more than once"};
      found = argv_[i + 1];
      used_[i] = used_[i + 1] = true;
      ++i;
    } else if (argv_[i].rfind(flag + "=", 0) == 0) {
      if (found) throw UsageError{flag + " given more than once"};
      found = argv_[i].substr(flag.size() + 1);
      used_[i] = true;
    }
  }
  return found;
}

std::string Args::take_string(const std::string& name) {
  auto v = take_value(name);
  if (!v) throw UsageError{"missing required flag --" + name};
  return *v;
}

std::optional<std::string> Args::take_optional_string(const std::string& name) {
  return take_value(name);
}

std::string Args::take_string(const std::string& name, const std::string& fallback) {
  auto v = take_value(name);
  return v ? *v : fallback;
}

std::optional<std::int64_t> Args::take_optional_int(const std::string& name, std::int64_t min,
                                                    std::int64_t max) {
  auto v = take_value(name);
  if (!v) return std::nullopt;
  std::int64_t out = 0;
  const char* first = v->data();
  const char* last = first + v->size();
  auto [ptr, ec] = std::from_chars(first, last, out);
  if (ec != std::errc() || ptr != last || v->empty())
    throw UsageError{"--" + name + " expects an integer, got '" + *v + "'"};
  if (out < min || out > max)
    throw UsageError{"--" + name + " (" + *v + ") must be in [" + std::to_string(min) + ", " +
                     std::to_string(max) + "]"};
  return out;
}

std::int64_t Args::take_int(const std::string& name, std::int64_t fallback, std::int64_t min,
                            std::int64_t max) {
  auto v = take_optional_int(name, min, max);
  return v ? *v : fallback;
}

std::optional<double> Args::take_optional_double(const std::string& name) {
  auto v = take_value(name);
  if (!v) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  double out = std::strtod(v->c_str(), &end);
  if (v->empty() || end != v->c_str() + v->size() || errno == ERANGE || !std::isfinite(out))
    throw UsageError{"--" + name + " expects a finite number, got '" + *v + "'"};
  return out;
}

double Args::take_double(const std::string& name, double fallback) {
  auto v = take_optional_double(name);
  return v ? *v : fallback;
}

bool Args::take_flag(const std::string& name) {
  const std::string flag = "--" + name;
  bool found = false;
  for (std::size_t i = 0; i < argv_.size(); ++i) {
    if (!used_[i] && argv_[i] == flag) {
      used_[i] = true;
      found = true;
    } else if (!used_[i] && argv_[i].rfind(flag + "=", 0) == 0) {
      throw UsageError{flag + " takes no value"};
    }
  }
  return found;
}

void Args::finish() {
  for (std::size_t i = 0; i < argv_.size(); ++i)
    if (!used_[i]) {
      const std::string& a = argv_[i];
      throw UsageError{(a.rfind("--", 0) == 0 ? "unknown flag '" : "unexpected argument '") + a +
                       "'"};
    }
}

static std::map<std::string, Command>& registry() {
  static std::map<std::string, Command> table;
  return table;
}

bool register_command(Command command) {
  std::string name = command.name;
  registry().emplace(std::move(name), std::move(command));
  return true;
}

const std::map<std::string, Command>& commands() { return registry(); }

bool stderr_is_terminal() { return ::isatty(2) == 1; }

Progress::Progress(std::string label, std::int64_t total)
    : label_(std::move(label)), total_(total > 0 ? total : 1), enabled_(stderr_is_terminal()) {}

void Progress::update(std::int64_t done) {
  if (!enabled_) return;
  const int percent = static_cast<int>(100 * done / total_);
  if (percent == last_percent_) return;
  last_percent_ = percent;
  const int width = 40;
  const int filled = width * percent / 100;
  std::fprintf(stderr, "\r%s [%.*s%*s] %3d%% (%lld/%lld)", label_.c_str(), filled,
               "########################################", width - filled, "", percent,
               static_cast<long long>(done), static_cast<long long>(total_));
  std::fflush(stderr);
}

void Progress::finish() {
  if (!enabled_) return;
  update(total_);
  std::fputc('\n', stderr);
}

void apply_runtime_flags(Args& args) {
  if (auto isa = args.take_optional_string("isa")) set_isa(parse_isa(*isa));
  if (auto threads = args.take_optional_int("threads", 1, 4096))
    set_num_threads(static_cast<int>(*threads));
}

}  // namespace simdattn::cli
