"""Generators of tiny media, shared by the tests, the examples and the benchmarks."""
