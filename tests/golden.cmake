# tests/golden.cmake — tests/unit/test_golden.cpp reads the configuration of each golden case
# from its safetensors "__metadata__", which the library's loader does not expose; it parses
# the JSON header itself.
target_link_libraries(simdattn_tests PRIVATE nlohmann_json::nlohmann_json)
