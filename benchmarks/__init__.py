"""Benchmarks of memo_replay against its peers: see benchmarks/README.md."""
