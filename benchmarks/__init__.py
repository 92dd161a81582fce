"""Benchmarks: scripts that measure quality and speed and write benchmarks/results.md.

python -m benchmarks --profile lecture             # every image model + the 2D GANs
python -m benchmarks.notebooks --profile lecture   # every notebook end to end
"""
