"""Benchmarks of mqbox against the classic one-RUN-per-step Dockerfile in bench/reference."""
