/* fuzz_regexp.c - libFuzzer harness for regexp: tables (POSIX engine); see fuzz_pattern.h. */
#define FUZZ_PATTERN_TYPE "regexp"
#include "fuzz_pattern.h"
