/* simdattn/export.h — SIMDATTN_API marks what libsimdattn exports. The library is built with
 * hidden visibility, so a shared libsimdattn exports exactly the declarations that carry it:
 * the public classes and functions of include/simdattn/ and nothing of its internals. C and C++. */
#ifndef SIMDATTN_EXPORT_H
#define SIMDATTN_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define SIMDATTN_API __attribute__((visibility("default")))
#else
#define SIMDATTN_API
#endif

#endif /* SIMDATTN_EXPORT_H */
