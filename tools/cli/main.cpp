// tools/cli/main.cpp — entry point of the `simdattn` tool: finds the subcommand, turns every
// error into one line on stderr and a non-zero exit status.
#include <cstdio>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "cli.hpp"
#include "simdattn/error.hpp"

namespace {

void print_usage(std::ostream& os) {
  os << "usage: simdattn <command> [flags]\n\ncommands:\n";
  for (const auto& [name, cmd] : simdattn::cli::commands()) os << "  " << cmd.synopsis << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> words(argv + 1, argv + argc);
  if (words.empty() || words[0] == "--help" || words[0] == "-h" || words[0] == "help") {
    print_usage(words.empty() ? std::cerr : std::cout);
    return words.empty() ? 2 : 0;
  }
  const auto& table = simdattn::cli::commands();
  std::string name = words[0];
  std::size_t consumed = 1;
  if (words.size() > 1 && table.count(name + " " + words[1])) {
    name += " " + words[1];
    consumed = 2;
  }
  auto it = table.find(name);
  if (it == table.end()) {
    std::cerr << "simdattn: error: unknown command '" << name << "' (try 'simdattn --help')\n";
    return 2;
  }
  try {
    simdattn::cli::Args args(name, std::vector<std::string>(words.begin() + consumed, words.end()));
    return it->second.run(args);
  } catch (const simdattn::cli::UsageError& e) {
    std::cerr << "simdattn " << name << ": error: " << e.message << "\n";
    return 2;
  } catch (const simdattn::Error& e) {
    std::cerr << "simdattn " << name << ": error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "simdattn " << name << ": error: " << e.what() << "\n";
    return 1;
  }
}
