/* compiler.h — the library's one compiler-attribute macro: printf-style format checking. */
#ifndef DDSTREAM_COMPILER_H
#define DDSTREAM_COMPILER_H

/* Marks argument a as a printf format whose arguments start at b, so -Wformat checks every call. */
#if defined(__GNUC__)
#  define DDS_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#  define DDS_PRINTF(a, b)
#endif

#endif
