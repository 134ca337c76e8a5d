// Helpers shared by the unit tests.
#pragma once

#include <doctest/doctest.h>

#include <initializer_list>
#include <string>

namespace pipecast_test {

/// Checks that `f` throws `E` and that the message contains every fragment (so an error
/// names its item and value, not just that something failed).
template <class E, class F>
void check_throws(F&& f, std::initializer_list<const char*> fragments) {
    bool thrown = false;
    try {
        f();
    } catch (const E& e) {
        thrown = true;
        const std::string msg = e.what();
        for (const char* frag : fragments) {
            INFO("message: " << msg << "  expected fragment: " << frag);
            CHECK(msg.find(frag) != std::string::npos);
        }
    }
    CHECK(thrown);
}

} // namespace pipecast_test
