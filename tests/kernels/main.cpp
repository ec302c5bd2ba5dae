// The doctest runner for the CPU kernel tests (`meson test kernels`).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
