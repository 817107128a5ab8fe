"""The reference openWakeWord streaming (pip openwakeword==0.4.0) with its three networks run by
Google's own TensorFlow Lite interpreter (pip ai-edge-litert) instead of ONNX Runtime: one score
per 80 ms hop for one word, as JSON. Usage:
openwakeword_tflite_scores.py MELSPECTROGRAM.tflite EMBEDDING.tflite WORD.tflite IN.wav"""
import json
import sys
import types
import wave

import numpy as np
from ai_edge_litert.interpreter import Interpreter

# The package's __init__ imports its verifier trainer, which needs scikit-learn; scoring does not.
stub = types.ModuleType("openwakeword.custom_verifier_model")
stub.train_custom_verifier = None
sys.modules["openwakeword.custom_verifier_model"] = stub

import openwakeword.model  # noqa: E402
import openwakeword.utils  # noqa: E402


class Arg:
    def __init__(self, name, shape):
        self.name, self.shape = name, shape


class LiteRtSession:
    """The slice of onnxruntime.InferenceSession that openwakeword 0.4.0 calls."""

    def __init__(self, path, sess_options=None, providers=None):
        self.interpreter = Interpreter(model_path=path, num_threads=1)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]

    def get_inputs(self):
        return [Arg(self.input["name"], list(self.input["shape"]))]

    def get_outputs(self):
        return [Arg(self.output["name"], list(self.output["shape"]))]

    def get_providers(self):
        return ["CPUExecutionProvider"]

    def run(self, _names, feed):
        x = np.ascontiguousarray(next(iter(feed.values())), dtype=np.float32)
        if list(self.input["shape"]) != list(x.shape):
            self.interpreter.resize_tensor_input(self.input["index"], list(x.shape))
            self.interpreter.allocate_tensors()
            self.input = self.interpreter.get_input_details()[0]
            self.output = self.interpreter.get_output_details()[0]
        self.interpreter.set_tensor(self.input["index"], x)
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(self.output["index"]).copy()]


openwakeword.model.ort.InferenceSession = LiteRtSession
openwakeword.utils.ort.InferenceSession = LiteRtSession

mel, embedding, word, wav_path = sys.argv[1:5]
with wave.open(wav_path, "rb") as f:
    assert f.getframerate() == 16000 and f.getnchannels() == 1 and f.getsampwidth() == 2
    data = np.frombuffer(f.readframes(f.getnframes()), dtype=np.int16)
model = openwakeword.model.Model(wakeword_model_paths=[word], melspec_onnx_model_path=mel, embedding_onnx_model_path=embedding)
scores = []
for i in range(0, len(data) - 1279, 1280):
    prediction = model.predict(data[i:i + 1280])
    scores.append(float(list(prediction.values())[0]))
print(json.dumps(scores))
