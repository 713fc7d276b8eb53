// tests/unit/public_headers_cxx17.cpp — proves the public headers compile as C++17 (the library
// is C++20 inside; tests/CMakeLists.txt builds this file with -std=c++17). It defines no tests.
#include "simdattn/attention.hpp"
#include "simdattn/error.hpp"
#include "simdattn/export.h"
#include "simdattn/gemm.hpp"
#include "simdattn/gpt2.hpp"
#include "simdattn/kv_cache.hpp"
#include "simdattn/reference.hpp"
#include "simdattn/runtime.hpp"
#include "simdattn/safetensors.hpp"
#include "simdattn/simdattn.h"
#include "simdattn/simdattn.hpp"
#include "simdattn/softmax.hpp"
#include "simdattn/tensor.hpp"
#include "simdattn/version.h"

#if __cplusplus != 201703L
#error "public_headers_cxx17.cpp must be compiled as C++17"
#endif
