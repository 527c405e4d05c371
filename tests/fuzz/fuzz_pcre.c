/* fuzz_pcre.c - libFuzzer harness for pcre: tables (PCRE2 engine); see fuzz_pattern.h. */
#define FUZZ_PATTERN_TYPE "pcre"
#include "fuzz_pattern.h"
