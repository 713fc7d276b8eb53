# The installed package works for a consumer project: find_package(simdattn), the umbrella
# header, the C API and the pkg-config flags alone, from a prefix other than the configured one
# (tests/consumer/run.sh); and a shared build exports the public API only (shared.sh).
if(SIMDATTN_INSTALL)
  add_test(NAME packaging_consumer
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/consumer/run.sh ${PROJECT_BINARY_DIR}
                   ${CMAKE_CURRENT_SOURCE_DIR}/data/consumer_mha_d8_h2.safetensors)
  set_tests_properties(packaging_consumer PROPERTIES TIMEOUT 900 LABELS packaging)
  # Builds the library once more, shared (a few minutes on 2 cores).
  add_test(NAME packaging_shared
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/consumer/shared.sh ${PROJECT_SOURCE_DIR}
                   ${CMAKE_CURRENT_SOURCE_DIR}/data/consumer_mha_d8_h2.safetensors)
  set_tests_properties(packaging_shared PROPERTIES TIMEOUT 1200 LABELS packaging)
endif()
# Configure refuses an xsimd other than 8.1.x, with one clear message (a fake 9.0 xsimd here).
add_test(NAME packaging_xsimd_version_check
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/consumer/xsimd_version_check.sh
                 ${PROJECT_SOURCE_DIR})
set_tests_properties(packaging_xsimd_version_check PROPERTIES TIMEOUT 300 LABELS packaging)
