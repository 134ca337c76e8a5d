// pipecast fuzz target: the model JSON reader (model_io.hpp).
//
// Input: JSON text, read as `pipecast model --model FILE` reads it (read_model). Refusing the
// input with a pipecast::error is the expected outcome for bad text; a crash, a sanitizer
// report, a hang or any other exception (std::bad_alloc, nlohmann's own, Boost's) is a
// finding. A model that loads must write out (to_json) and load back.
#include <pipecast/io/model_json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    std::istringstream in(text);
    std::optional<pipecast::model> m;
    try {
        m = pipecast::read_model(in, "<fuzz>");
    } catch (const pipecast::error&) {
        return 0; // refused with a message: the expected outcome for bad input
    }
    // What was accepted writes out and reads back.
    std::ostringstream out;
    pipecast::write_model(out, *m);
    std::istringstream back(out.str());
    try {
        (void)pipecast::read_model(back, "<fuzz: written back>");
    } catch (const pipecast::error& e) {
        std::fprintf(stderr, "a model that loaded does not load back once written: %s\n%s\n", e.what(), out.str().c_str());
        std::abort();
    }
    return 0;
}
