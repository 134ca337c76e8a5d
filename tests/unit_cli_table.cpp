// Tests of the CLI's table printer (examples/cli/table.hpp, header-only, the standard library
// only): display widths against the Unicode tables worked by hand (CJK 2 columns, combining
// marks 0, accented Latin 1, fullwidth forms 2, invalid UTF-8 1 a byte), and tables whose
// columns line up by display width after Chinese, accented and mixed names.
#include "../examples/cli/table.hpp"

#include <doctest/doctest.h>

#include <sstream>
#include <string>
#include <vector>

// One namespace a file: the unit tests are compiled together (tests/CMakeLists.txt).
namespace unit_cli_table {

using pipecast_cli::display_width;

namespace {

std::vector<std::string> lines_of(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}

} // namespace

TEST_CASE("display_width counts terminal columns") {
    CHECK(display_width("") == 0);
    CHECK(display_width("Lead") == 4);
    CHECK(display_width("资格确认") == 8);            // 4 CJK ideographs (U+8D44 ...), 12 bytes
    CHECK(display_width("商务谈判") == 8);
    CHECK(display_width("N\xC3\xA9gociation") == 11); // precomposed é (U+00E9), 12 bytes
    CHECK(display_width("De\xCC\x81mo") == 4);        // e + U+0301 COMBINING ACUTE ACCENT
    CHECK(display_width("De\xCC\x81mo 演示") == 9);   // mixed: 4 + blank + 2 x 2
    CHECK(display_width("\xC2\xB1 se") == 4);         // ± (U+00B1)
    CHECK(display_width("\xEF\xBC\xA1") == 2);        // FULLWIDTH LATIN CAPITAL A (U+FF21)
    CHECK(display_width("\xE3\x81\x82") == 2);        // HIRAGANA A (U+3042)
    CHECK(display_width("\xED\x95\x9C") == 2);        // HANGUL SYLLABLE HAN (U+D55C)
    CHECK(display_width("a\xE2\x80\x8B" "b") == 2);   // ZERO WIDTH SPACE (U+200B)
    CHECK(display_width("\xF0\x9F\x98\x80") == 2);    // an emoji (U+1F600), 4 bytes
    CHECK(display_width("\xF0\xA0\x80\x80") == 2);    // CJK extension B (U+20000)
    CHECK(display_width("\xFF\xFE" "a") == 3);        // invalid bytes: 1 each
    CHECK(display_width("\xE4\xB8") == 2);            // a truncated sequence: 1 a byte
}

TEST_CASE("pad fills to a display width") {
    CHECK(pipecast_cli::pad("资格", 6, true) == "资格  ");
    CHECK(pipecast_cli::pad("资格", 6, false) == "  资格");
    CHECK(pipecast_cli::pad("资格确认", 4, true) == "资格确认"); // wider: left whole
}

TEST_CASE("table columns line up by display width") {
    pipecast_cli::table t({"stage", "deals", "value"});
    t.add_row({"资格确认", "12", "1,200"});
    t.add_row({"N\xC3\xA9gociation", "3", "45,000"});
    t.add_row({"De\xCC\x81mo 演示", "100", "7"});
    t.add_rule();
    t.add_row({"Won", "1", "2"});
    std::ostringstream os;
    t.print(os);
    const auto lines = lines_of(os.str());
    REQUIRE(lines.size() == 7); // header, rule, 3 rows, rule, 1 row
    // Column widths: stage 11 (Négociation), deals 5 (the header), value 6 (45,000): every
    // line is 11 + 2 + 5 + 2 + 6 = 26 columns, worked by hand.
    for (const auto& l : lines) CHECK(display_width(l) == 26);
    CHECK(lines[1] == std::string(26, '-'));
    CHECK(lines[2] == "资格确认        12   1,200"); // 8 columns + 3 blanks of padding
    CHECK(lines[4] == "De\xCC\x81mo 演示      100       7");
    // The column after each name starts at display column 13 in every row.
    for (std::size_t i : {2u, 3u, 4u, 6u}) {
        const std::string& l = lines[i];
        std::size_t bytes = 0, cols = 0;
        while (cols < 11) { // walk the first cell by display width
            std::size_t next = bytes + 1;
            while (next < l.size() && (static_cast<unsigned char>(l[next]) & 0xC0u) == 0x80u) ++next;
            cols += display_width(std::string_view(l).substr(bytes, next - bytes));
            bytes = next;
        }
        CHECK(cols == 11);
        CHECK(l.substr(bytes, 2) == "  ");
    }
}

} // namespace unit_cli_table
