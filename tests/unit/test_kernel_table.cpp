// tests/unit/test_kernel_table.cpp — the one dispatch table: every usable ISA has a complete
// table whose entries say which ISA and tile they were built for, and an ISA that is not usable
// has none (an error, never another ISA's kernels).
#include <gtest/gtest.h>

#include <string>

#include "dispatch/kernel_table.hpp"
#include "simdattn/error.hpp"
#include "simdattn/runtime.hpp"

namespace simdattn {
namespace {

bool has(const char* name, const std::string& part) {
  return name != nullptr && std::string(name).find(part) != std::string::npos;
}

TEST(KernelTable, EveryUsableIsaHasEveryKernelNamedByIsaAndTile) {
  for (Isa isa : usable_isas()) {
    SCOPED_TRACE(isa_name(isa));
    const detail::KernelTable& t = detail::kernels_for(isa);
    EXPECT_EQ(t.isa, isa);
    const std::string suffix = std::string("__") + isa_name(isa);  // "__neon" prefixes "__neon64"
    for (const char* name : {t.gemm.name, t.gemm_small_m.name, t.flash.name, t.softmax.name,
                             t.decode.name})
      EXPECT_TRUE(has(name, suffix)) << (name ? name : "(null)");
    ASSERT_NE(t.gemm.fn, nullptr);
    ASSERT_NE(t.gemm_small_m.fn, nullptr);
    ASSERT_NE(t.flash.pack, nullptr);
    ASSERT_NE(t.flash.block, nullptr);
    ASSERT_NE(t.flash.finish, nullptr);
    ASSERT_NE(t.softmax.rows, nullptr);
    ASSERT_NE(t.softmax.exp, nullptr);
    ASSERT_NE(t.decode.row, nullptr);
    // The tile in the name is the tile the kernel reports.
    EXPECT_TRUE(has(t.gemm.name, std::to_string(t.gemm.mr) + "x" + std::to_string(t.gemm.nr)))
        << t.gemm.name;
    EXPECT_TRUE(has(t.flash.name, std::to_string(t.flash.tile.key_tile) + "x" +
                                      std::to_string(t.flash.tile.query_tile)))
        << t.flash.name;
    // Blocking is whole register tiles.
    EXPECT_GT(t.gemm.mc, 0);
    EXPECT_EQ(t.gemm.mc % t.gemm.mr, 0);
    EXPECT_GE(t.gemm.nc, t.gemm.nr);  // an upper bound, rounded to whole tiles by the driver
    EXPECT_GT(t.gemm.kc, 0);
    EXPECT_GE(t.gemm_small_m.max_m, 1);
  }
}

TEST(KernelTable, TheActiveTableIsTheActiveIsas) {
  EXPECT_EQ(&detail::kernels(), &detail::kernels_for(active_isa()));
}

TEST(KernelTable, AnUnusableIsaHasNoTable) {
  for (Isa isa : {Isa::sse2, Isa::avx2, Isa::avx512, Isa::neon}) {
    if (isa_usable(isa)) continue;
    try {
      (void)detail::kernels_for(isa);
      ADD_FAILURE() << isa_name(isa) << " is not usable but has a table";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::unsupported);
      EXPECT_NE(std::string(e.what()).find(isa_name(isa)), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace simdattn
