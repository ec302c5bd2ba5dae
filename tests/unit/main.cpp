// The doctest runner for all unit tests (`meson test --suite unit`).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
