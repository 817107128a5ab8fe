// Iris's shim over TensorFlow Lite Micro's audio frontend: the configuration microWakeWord's
// models were trained on (pymicro-features' and ESPHome's), and one step of 10 ms at a time.
#include <stdlib.h>

#include "tensorflow/lite/experimental/microfrontend/lib/frontend.h"
#include "tensorflow/lite/experimental/microfrontend/lib/frontend_util.h"

struct IrisFrontend {
  FrontendConfig config;
  FrontendState state;
};

static void fill(FrontendConfig *c) {
  c->window.size_ms = 30;
  c->window.step_size_ms = 10;
  c->filterbank.num_channels = 40;
  c->filterbank.lower_band_limit = 125.0f;
  c->filterbank.upper_band_limit = 7500.0f;
  c->noise_reduction.smoothing_bits = 10;
  c->noise_reduction.even_smoothing = 0.025f;
  c->noise_reduction.odd_smoothing = 0.06f;
  c->noise_reduction.min_signal_remaining = 0.05f;
  c->pcan_gain_control.enable_pcan = 1;
  c->pcan_gain_control.strength = 0.95f;
  c->pcan_gain_control.offset = 80.0f;
  c->pcan_gain_control.gain_bits = 21;
  c->log_scale.enable_log = 1;
  c->log_scale.scale_shift = 6;
}

extern "C" {

IrisFrontend *iris_frontend_new(void) {
  IrisFrontend *f = (IrisFrontend *)calloc(1, sizeof(IrisFrontend));
  if (!f) return NULL;
  fill(&f->config);
  if (!FrontendPopulateState(&f->config, &f->state, 16000)) {
    free(f);
    return NULL;
  }
  return f;
}

void iris_frontend_free(IrisFrontend *f) {
  if (!f) return;
  FrontendFreeStateContents(&f->state);
  free(f);
}

// Feeds up to `n` samples; returns the channels written to `out` (40 when a window is full, else
// 0) and sets `*read` to the samples consumed.
size_t iris_frontend_step(IrisFrontend *f, const int16_t *samples, size_t n, size_t *read, uint16_t *out) {
  FrontendOutput o = FrontendProcessSamples(&f->state, samples, n, read);
  for (size_t i = 0; i < o.size && i < 40; i++) out[i] = o.values[i];
  return o.size < 40 ? o.size : 40;
}

void iris_frontend_reset(IrisFrontend *f) {
  FrontendFreeStateContents(&f->state);
  FrontendPopulateState(&f->config, &f->state, 16000);
}
}
