"""The reference openWakeWord (pip openwakeword==0.4.0) on a 16-bit 16 kHz mono WAV: one score per
80 ms hop for one word model, as JSON. Usage: openwakeword_scores.py WORD_MODEL.onnx IN.wav"""
import json
import sys
import types
import wave

import numpy as np

# The package's __init__ imports its verifier trainer, which needs scikit-learn; scoring does not.
stub = types.ModuleType("openwakeword.custom_verifier_model")
stub.train_custom_verifier = None
sys.modules["openwakeword.custom_verifier_model"] = stub

from openwakeword.model import Model  # noqa: E402

model_path, wav_path = sys.argv[1], sys.argv[2]
with wave.open(wav_path, "rb") as f:
    assert f.getframerate() == 16000 and f.getnchannels() == 1 and f.getsampwidth() == 2
    data = np.frombuffer(f.readframes(f.getnframes()), dtype=np.int16)
model = Model(wakeword_model_paths=[model_path])
scores = []
for i in range(0, len(data) - 1279, 1280):
    prediction = model.predict(data[i:i + 1280])
    scores.append(float(list(prediction.values())[0]))
print(json.dumps(scores))
