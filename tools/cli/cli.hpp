// tools/cli/cli.hpp — the small framework every `simdattn` subcommand is written against:
// a registry of commands and a strict flag parser (unknown or malformed flags are errors).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace simdattn::cli {

/// Thrown for bad command lines; main() prints "simdattn: error: <message>" and exits 2.
struct UsageError {
  std::string message;
};

/// Flags of one command. Each value is consumed by exactly one take_* call; finish() then
/// rejects whatever is left, so a mistyped flag never goes unnoticed.
class Args {
 public:
  Args(std::string command, std::vector<std::string> argv);

  /// --name VALUE. Throws UsageError if the flag is missing (required) or has no value.
  std::string take_string(const std::string& name);
  std::optional<std::string> take_optional_string(const std::string& name);
  std::string take_string(const std::string& name, const std::string& fallback);
  /// Integers are parsed strictly (the whole value, in range [min, max]).
  std::int64_t take_int(const std::string& name, std::int64_t fallback, std::int64_t min = 0,
                        std::int64_t max = INT64_MAX);
  std::optional<std::int64_t> take_optional_int(const std::string& name, std::int64_t min = 0,
                                                std::int64_t max = INT64_MAX);
  double take_double(const std::string& name, double fallback);
  std::optional<double> take_optional_double(const std::string& name);
  /// --name with no value.
  bool take_flag(const std::string& name);
  /// Throws UsageError naming the first flag or argument nobody took.
  void finish();

  const std::string& command() const noexcept { return command_; }

 private:
  std::optional<std::string> take_value(const std::string& name);
  std::string command_;
  std::vector<std::string> argv_;
  std::vector<bool> used_;
};

using CommandFn = std::function<int(Args&)>;

struct Command {
  std::string name;      ///< "run", or two words: "bench gemm"
  std::string synopsis;  ///< one line of usage
  CommandFn run;
};

/// Registers a command at static-initialisation time; returns true.
bool register_command(Command command);
const std::map<std::string, Command>& commands();

/// Helpers shared by the commands.
bool stderr_is_terminal();
/// A one-line progress bar on stderr, drawn only when stderr is a terminal.
class Progress {
 public:
  Progress(std::string label, std::int64_t total);
  void update(std::int64_t done);
  void finish();

 private:
  std::string label_;
  std::int64_t total_;
  bool enabled_;
  int last_percent_ = -1;
};

/// Applies --isa and --threads (shared by run, bench, decode, difftest).
void apply_runtime_flags(Args& args);

}  // namespace simdattn::cli
