# Build-level checks. The ISA symbol check (cmake/check_isa_symbols.cmake) runs at every build
# of the library; this test shows it can fail: fed one ISA's object twice, every kernel symbol
# is "defined in two ISA objects" and the check must say so.
list(GET SIMDATTN_ISA_OBJECTS 0 simdattn_first_isa_object)
add_test(NAME isa_symbol_check_rejects_a_shared_symbol
         COMMAND ${CMAKE_COMMAND} -DNM=${CMAKE_NM}
                 "-DOBJECTS=${simdattn_first_isa_object}|${simdattn_first_isa_object}"
                 -P ${PROJECT_SOURCE_DIR}/cmake/check_isa_symbols.cmake)
set_tests_properties(isa_symbol_check_rejects_a_shared_symbol PROPERTIES
  PASS_REGULAR_EXPRESSION "symbols defined in more than one ISA object")
