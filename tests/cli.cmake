# tests/cli.cmake — end-to-end tests of the `simdattn` tool: bash scripts in tests/cli/ that run
# it on the committed golden data and check its outputs with tests/cli/st_tool.py (Python 3,
# standard library only: CI needs neither torch nor the safetensors package).
if(TARGET simdattn_cli)
  find_program(SIMDATTN_BASH bash)
  find_package(Python3 COMPONENTS Interpreter)
  if(SIMDATTN_BASH AND Python3_Interpreter_FOUND)
    set(cli_dir ${CMAKE_CURRENT_SOURCE_DIR}/cli)
    set(golden_dir ${CMAKE_CURRENT_SOURCE_DIR}/data/golden)
    add_test(NAME cli_run_golden_reference
             COMMAND ${SIMDATTN_BASH} ${cli_dir}/run_golden.sh $<TARGET_FILE:simdattn_cli>
                     ${Python3_EXECUTABLE} ${golden_dir} reference)
    add_test(NAME cli_run_golden_fast
             COMMAND ${SIMDATTN_BASH} ${cli_dir}/run_golden.sh $<TARGET_FILE:simdattn_cli>
                     ${Python3_EXECUTABLE} ${golden_dir} fast)
    add_test(NAME cli_run_errors
             COMMAND ${SIMDATTN_BASH} ${cli_dir}/run_errors.sh $<TARGET_FILE:simdattn_cli>
                     ${Python3_EXECUTABLE} ${golden_dir})
    add_test(NAME cli_run_options
             COMMAND ${SIMDATTN_BASH} ${cli_dir}/run_options.sh $<TARGET_FILE:simdattn_cli>
                     ${Python3_EXECUTABLE} ${golden_dir})
    add_test(NAME cli_demo
             COMMAND ${SIMDATTN_BASH} ${cli_dir}/demo.sh $<TARGET_FILE:simdattn_cli>)
    set_tests_properties(cli_run_golden_reference cli_run_golden_fast cli_run_errors cli_run_options cli_demo
                         PROPERTIES TIMEOUT 300 LABELS cli)
    # KV cache and GPT-2: `run --prefill`, `run --gpt2-layer` (tests/data/gpt2, made by
    # tools/make_gpt2_checkpoint.py), `decode`, and their clean failures.
    set(gpt2_dir ${CMAKE_CURRENT_SOURCE_DIR}/data/gpt2)
    add_test(NAME cli_run_prefill_reference
             COMMAND ${SIMDATTN_BASH} ${cli_dir}/run_prefill.sh $<TARGET_FILE:simdattn_cli>
                     ${Python3_EXECUTABLE} ${golden_dir} reference)
    add_test(NAME cli_run_prefill_fast
             COMMAND ${SIMDATTN_BASH} ${cli_dir}/run_prefill.sh $<TARGET_FILE:simdattn_cli>
                     ${Python3_EXECUTABLE} ${golden_dir} fast)
    add_test(NAME readme_examples_are_the_tested_programs
             COMMAND ${Python3_EXECUTABLE} ${cli_dir}/readme_examples.py
                     ${PROJECT_SOURCE_DIR}/README.md ${CMAKE_CURRENT_SOURCE_DIR}/unit)
    set_tests_properties(readme_examples_are_the_tested_programs PROPERTIES LABELS cli)
    add_test(NAME cli_run_llama
             COMMAND ${SIMDATTN_BASH} ${cli_dir}/run_llama.sh $<TARGET_FILE:simdattn_cli>
                     ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/data/llama)
    set_tests_properties(cli_run_llama PROPERTIES TIMEOUT 300 LABELS cli)
    add_test(NAME cli_run_gpt2
             COMMAND ${SIMDATTN_BASH} ${cli_dir}/run_gpt2.sh $<TARGET_FILE:simdattn_cli>
                     ${Python3_EXECUTABLE} ${gpt2_dir})
    add_test(NAME cli_run_kv_errors
             COMMAND ${SIMDATTN_BASH} ${cli_dir}/run_kv_errors.sh $<TARGET_FILE:simdattn_cli>
                     ${Python3_EXECUTABLE} ${golden_dir} ${gpt2_dir})
    add_test(NAME cli_decode
             COMMAND ${SIMDATTN_BASH} ${cli_dir}/decode.sh $<TARGET_FILE:simdattn_cli>
                     ${Python3_EXECUTABLE} ${gpt2_dir})
    add_test(NAME cli_run_nonfinite
             COMMAND ${SIMDATTN_BASH} ${cli_dir}/run_nonfinite.sh $<TARGET_FILE:simdattn_cli>
                     ${Python3_EXECUTABLE} ${golden_dir})
    set_tests_properties(cli_run_prefill_reference cli_run_prefill_fast cli_run_gpt2
                         cli_run_kv_errors cli_decode cli_run_nonfinite
                         PROPERTIES TIMEOUT 300 LABELS cli)
    # `difftest`: the seeds the README and the mutation check use pass, and replays of cases
    # that once failed for the oracle's sake (float underflow under an infinite value, values
    # that cancel, f16-subnormal q8_0 scales).
    add_test(NAME cli_difftest
             COMMAND ${SIMDATTN_BASH} ${cli_dir}/difftest.sh $<TARGET_FILE:simdattn_cli>
                     ${Python3_EXECUTABLE})
    set_tests_properties(cli_difftest PROPERTIES TIMEOUT 600 LABELS cli)
    # `bench gemm` / `bench mha`: JSON fields and their arithmetic, text form, flag errors.
    add_test(NAME cli_bench
             COMMAND ${SIMDATTN_BASH} ${cli_dir}/bench.sh $<TARGET_FILE:simdattn_cli>
                     ${Python3_EXECUTABLE})
    set_tests_properties(cli_bench PROPERTIES TIMEOUT 300 LABELS cli)
  else()
    message(STATUS "simdattn: CLI tests skipped (need bash and Python 3)")
  endif()
endif()
