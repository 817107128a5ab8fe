"""microWakeWord's score after each model call, by the reference pymicro-wakeword 2.5.0.

Usage: microwakeword_probs.py WORD.json LIBTENSORFLOWLITE_C WAV
Prints a JSON list: for every third feature row (one model call at the models' stride of
3), the value `process_streaming_prob` returns there (0.0 until its sliding window is full).
"""
import json
import sys
import wave

from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures

config, library, wav = sys.argv[1:4]
word = MicroWakeWord.from_config(config, libtensorflowlite_c_path=library)
features = MicroWakeWordFeatures()
with wave.open(wav, "rb") as w:
    assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2, "16 kHz mono 16-bit"
    audio = w.readframes(w.getnframes())
probs = [word.process_streaming_prob(f) for f in features.process_streaming(audio)]
print(json.dumps(probs[word.stride - 1 :: word.stride]))
