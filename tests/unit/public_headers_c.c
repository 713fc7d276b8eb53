/* tests/unit/public_headers_c.c — proves the C headers compile as strict C99
 * (tests/CMakeLists.txt builds this file with -std=c99 -pedantic-errors), and reports the
 * version as a C program sees it to test_version.cpp. */
#include "simdattn/export.h"
#include "simdattn/simdattn.h"
#include "simdattn/version.h"

#if !defined(__STDC_VERSION__) || __STDC_VERSION__ != 199901L
#error "public_headers_c.c must be compiled as C99"
#endif

int simdattn_test_c_header_version_number(void) { return SIMDATTN_VERSION_NUMBER; }
const char* simdattn_test_c_header_version_string(void) { return SIMDATTN_VERSION_STRING; }
int simdattn_test_c_library_version_number(void) { return simdattn_version_number(); }
const char* simdattn_test_c_library_version_string(void) { return simdattn_version(); }
