// A unit that includes the whole library and calls none of it: with every library function
// a template (docs/design.md, "Compiled where called"), it compiles none of the solvers,
// distributions or simulator behind them. tests/cmake/lazy_headers.cmake checks its symbols.
#include <pipecast/pipecast.hpp>

int main() { return 0; }
