"""The benchmark scripts are run by hand (see docs/BENCHMARKS.md), never collected by pytest."""

collect_ignore_glob = ["*.py"]
