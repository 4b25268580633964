"""Decode time, onnxruntime against Keras: synth.benchmarks.suites.decode with training.benchmarks' Keras baseline."""

import sys

from synth.benchmarks.suites.decode import main
from training.benchmarks import paper_decoder

if __name__ == "__main__":
    sys.exit(main(paper_decoder=paper_decoder))
