"""Developer tools: the local mesh of `make up`, the experiment CLI, load and benchmarks."""
