"""The reference Smart Turn v3 (pip pipecat-ai==1.14.0: its numpy Whisper features and the ONNX
model on onnxruntime) on a 16-bit 16 kHz mono WAV: the features and the probability, as JSON.
Usage: smart_turn.py MODEL.onnx IN.wav"""
import importlib.util
import json
import sys
import wave

import numpy as np
import onnxruntime as ort

# pipecat's features module is numpy-only; load it by path, without the rest of pipecat.
base = importlib.util.find_spec("pipecat").submodule_search_locations[0]
spec = importlib.util.spec_from_file_location("wf", f"{base}/audio/turn/smart_turn/_whisper_features.py")
wf = importlib.util.module_from_spec(spec)
spec.loader.exec_module(wf)

model_path, wav_path = sys.argv[1], sys.argv[2]
with wave.open(wav_path, "rb") as f:
    data = np.frombuffer(f.readframes(f.getnframes()), dtype=np.int16).astype(np.float32) / 32768.0
# As pipecat's LocalSmartTurnAnalyzerV3._predict_endpoint: the last 8 s, zero-padded on the left.
n = 8 * 16000
audio = data[-n:] if len(data) > n else np.pad(data, (n - len(data), 0))
features = wf.compute_whisper_log_mel_features(audio)
session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
probability = float(session.run(None, {"input_features": features[None]})[0][0].item())
print(json.dumps({"features": features.flatten().tolist()[::97], "stride": 97, "probability": probability}))
