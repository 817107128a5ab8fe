#!/usr/bin/env bash
# Iris's main job on a fresh Debian machine: install what is missing, fetch the default model
# pack, build, and answer the sample spoken question in tests/data/question.wav.
source "$(dirname "$0")/common.sh"
setup
say "asking: tests/data/question.wav (\"What is the capital of France?\")"
"$IRIS" ask --audio tests/data/question.wav --out answer.wav
