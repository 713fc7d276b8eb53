# tests/fuzz.cmake — ctest smoke runs of the libFuzzer targets (included by tests/CMakeLists.txt).
# The fuzzers need clang, and the main build may be gcc, so each test builds tests/fuzz/ as a
# separate clang project under <build>/fuzz-clang (incrementally) and then fuzzes for a few
# seconds. Without a clang++ that links -fsanitize=fuzzer the tests report "skipped" (code 77).
# A second fuzzer adds one add_test() here calling the script with its own name; the resource
# lock keeps two tests from configuring the shared clang build at the same time.
# Not in a cross build: the fuzzers are built for and run on the host, so they would test the
# host's ISAs and not the target's.
find_program(SIMDATTN_BASH bash)
if(SIMDATTN_BASH AND NOT CMAKE_CROSSCOMPILING)
  set(SIMDATTN_FUZZ_BUILD_DIR ${CMAKE_CURRENT_BINARY_DIR}/fuzz-clang)
  add_test(NAME fuzz_safetensors_smoke
           COMMAND ${SIMDATTN_BASH} ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/run_fuzz_smoke.sh
                   ${SIMDATTN_FUZZ_BUILD_DIR} fuzz_safetensors)
  set_tests_properties(fuzz_safetensors_smoke PROPERTIES
    SKIP_RETURN_CODE 77 TIMEOUT 900 LABELS fuzz RESOURCE_LOCK simdattn_fuzz_build)
  add_test(NAME fuzz_module_smoke
           COMMAND ${SIMDATTN_BASH} ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/run_fuzz_smoke.sh
                   ${SIMDATTN_FUZZ_BUILD_DIR} fuzz_module)
  set_tests_properties(fuzz_module_smoke PROPERTIES
    SKIP_RETURN_CODE 77 TIMEOUT 1800 LABELS fuzz RESOURCE_LOCK simdattn_fuzz_build)
endif()
