"""The measuring and experiment code: the speed benchmarks (models,
strategies, serving), the pretraining comparison with its baselines, the
main job (`convbert-demo`) and the executable reference (transformers'
PyTorch ConvBERT).

It lives inside the package so that the console scripts built on it
(`convbert-benchmark`, `convbert-demo`, `convbert-compare`) run from an
installed wheel; the library never imports it (the import contracts in
`setup.cfg`, checked by `make lint`)."""
