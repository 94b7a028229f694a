"""`aigc-audit bench`: benchmarks of the pipeline and of its stages. Outside the product's
path: it may import `app`, `demo` and every stage, and no stage imports it."""
