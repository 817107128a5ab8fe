# The reference whisper.cpp, through the pywhispercpp package (built from source, so it uses this
# CPU's instructions as Iris's own whisper.cpp does). Reads a JSON job on stdin: model, threads,
# language, runs, and files of raw little-endian f32 16 kHz samples (Iris's own decode and
# resampling, so both sides hear the very same samples). Prints one JSON line per file.
import ctypes, json, os, site, statistics, sys, time

# The source build leaves libwhisper and libggml beside the extension without an rpath.
for sp in site.getsitepackages():
    for name in ["libggml-base.so.0", "libggml-cpu.so.0", "libggml.so.0", "libwhisper.so.1"]:
        path = os.path.join(sp, name)
        if os.path.exists(path):
            ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)

import numpy as np
from pywhispercpp.model import Model

job = json.loads(sys.stdin.read())
t = time.perf_counter()
# The parameters Iris's whisper-rs backend sets (flash attention off, as there); the rest are
# whisper.cpp's defaults.
model = Model(job["model"], redirect_whispercpp_logs_to=None, n_threads=job["threads"], language=job["language"],
              no_timestamps=True, suppress_nst=True, print_progress=False, print_realtime=False,
              print_timestamps=False, greedy={"best_of": 1}, context_params={"flash_attn": False})
print(json.dumps({"load_s": time.perf_counter() - t}), flush=True)
for f in job["files"]:
    pcm = np.fromfile(f, dtype="<f4")
    times, text = [], ""
    for _ in range(job["runs"]):
        t0 = time.perf_counter()
        segments = model.transcribe(pcm)
        times.append(time.perf_counter() - t0)
        text = "".join(s.text for s in segments).strip()
    print(json.dumps({"file": f, "text": text, "s": statistics.median(times)}), flush=True)
