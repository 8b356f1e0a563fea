#!/usr/bin/env python3
"""Parse Triton model configs (config.pbtxt text) against Triton's own schema.

Usage: check-triton-configs.py FILE_OR_DIR...   (directories: every *.pbtxt below them)

Uses the ModelConfig protobuf class shipped in PyPI `tritonclient`
(`tritonclient.grpc.model_config_pb2`, which nvidia-pytriton pulls in, so the Triton venv of
`scripts/setup-engines.sh triton` has it) and `google.protobuf.text_format.Parse`, which rejects
unknown fields, wrong types and bad enum names. Prints one line per file; exits 1 if any fails.
"""
import pathlib
import sys

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2


def files(args):
    for a in args:
        p = pathlib.Path(a)
        if p.is_dir():
            yield from sorted(p.rglob("*.pbtxt"))
        else:
            yield p


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    bad = 0
    n = 0
    for f in files(argv[1:]):
        n += 1
        try:
            cfg = text_format.Parse(f.read_text(), model_config_pb2.ModelConfig())
            print(f"ok   {f} ({cfg.backend or cfg.platform}, max_batch_size {cfg.max_batch_size})")
        except text_format.ParseError as e:
            bad += 1
            print(f"FAIL {f}: {e}")
    print(f"{n - bad}/{n} configs parse against Triton's model_config.proto")
    return 1 if bad or n == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
