"""Reference fixtures for Iris's PaliGemma (crates/iris-vlm), made with `transformers` itself.

A PaliGemma of the real architecture (SigLIP vision tower, linear projector, Gemma) but tiny
and with random weights (seeded), its weights as safetensors, a fixed test image, the pixel
values the reference processor (SiglipImageProcessor, as PaliGemma's processor configures it)
makes of that image at the tiny model's size and at the real models' 224x224, and what
Pillow's own resize makes at 224x224 (transformers 4.x resized with Pillow, 5.x with
torchvision), and the reference logits of the last prompt position plus the next greedy tokens.

usage: python make_paligemma_fixtures.py OUT_DIR   (needs torch, transformers, pillow, numpy)
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from transformers import GemmaConfig, PaliGemmaConfig, PaliGemmaForConditionalGeneration, SiglipImageProcessor, SiglipVisionConfig

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
torch.manual_seed(1234)

VOCAB, IMAGE_TOKEN, BOS = 300, 299, 2
vision = SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                            image_size=28, patch_size=14, hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6)
text = GemmaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                   head_dim=16, vocab_size=VOCAB, hidden_activation="gelu_pytorch_tanh", rms_norm_eps=1e-6, rope_theta=10000.0,
                   max_position_embeddings=256)
config = PaliGemmaConfig(vision_config=vision.to_dict(), text_config=text.to_dict(), projection_dim=32,
                         image_token_index=IMAGE_TOKEN, vocab_size=VOCAB, hidden_size=32)
model = PaliGemmaForConditionalGeneration(config).eval()
# Random init leaves some tensors at zero or one; give every weight a real value to compare.
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.randn_like(p) * 0.2)

# A fixed image with edges, a gradient and colour, not of either target size (both resizes run).
w, h = 41, 29
yy, xx = np.mgrid[0:h, 0:w]
rgb = np.stack([(xx * 255 // (w - 1)), (yy * 255 // (h - 1)), ((xx // 5 + yy // 5) % 2) * 200 + 30], axis=-1).astype(np.uint8)
rgb[8:20, 12:30] = [240, 40, 60]
Image.fromarray(rgb).save(out / "image.png")
image = Image.open(out / "image.png").convert("RGB")

def processor(size):
    return SiglipImageProcessor(do_resize=True, size={"height": size, "width": size}, resample=Image.BICUBIC, do_rescale=True,
                                rescale_factor=1 / 255, do_normalize=True, image_mean=[0.5] * 3, image_std=[0.5] * 3)

pixels = processor(28)(image, return_tensors="pt")["pixel_values"].float()
pixels_224 = processor(224)(image, return_tensors="pt")["pixel_values"].float()
assert torch.allclose(torch.round(pixels_224 * 127.5 + 127.5) / 127.5 - 1, pixels_224, atol=1e-6), "not 8-bit levels"

n_image = (28 // 14) ** 2
prompt = [5, 17, 42, 7, 108]  # token ids of a question; the newline that ends a prefix is id 108 in Gemma
input_ids = torch.tensor([[IMAGE_TOKEN] * n_image + [BOS] + prompt])
with torch.no_grad():
    logits = model(input_ids=input_ids, pixel_values=pixels, token_type_ids=torch.zeros_like(input_ids)).logits[0, -1].float()
    generated = model.generate(input_ids=input_ids, pixel_values=pixels, token_type_ids=torch.zeros_like(input_ids),
                               attention_mask=torch.ones_like(input_ids), max_new_tokens=6, do_sample=False)[0, input_ids.shape[1]:]

# lm_head is tied to the token embeddings, as in the real checkpoints.
save_file({k: v.contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"}, out / "model.safetensors")
save_file({
    "pixel_values": pixels.contiguous(),
    # As the 8-bit levels they are exactly ((v / 255) - 0.5) / 0.5 of: a quarter of the bytes.
    "pixel_values_224_u8": torch.round(pixels_224 * 127.5 + 127.5).to(torch.uint8).contiguous(),
    # Pillow's own resize (what transformers 4.x used), HWC.
    "resized_224_pillow_u8": torch.from_numpy(np.asarray(image.resize((224, 224), resample=Image.BICUBIC, reducing_gap=None)).copy()),
    "input_ids": input_ids.to(torch.int64).contiguous(),
    "logits": logits.contiguous(),
    "generated": generated.to(torch.int64).contiguous(),
}, out / "reference.safetensors")
td = text.to_dict()
rope = td.get("rope_theta") or (td.get("rope_parameters") or {}).get("rope_theta")
assert rope == 10000.0, td
cfg = {
    "vision_config": {k: vision.to_dict()[k] for k in ["hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                                                        "num_channels", "image_size", "patch_size", "hidden_act", "layer_norm_eps"]},
    "text_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
                    "head_dim": 16, "vocab_size": VOCAB, "hidden_act": None, "hidden_activation": "gelu_pytorch_tanh",
                    "rms_norm_eps": 1e-6, "rope_theta": rope, "max_position_embeddings": 256, "attention_bias": False},
    "projection_dim": 32,
    "image_token_index": IMAGE_TOKEN,
}
(out / "config.json").write_text(json.dumps(cfg, indent=1))
import transformers
import PIL
(out / "versions.json").write_text(json.dumps({"transformers": transformers.__version__, "torch": torch.__version__, "pillow": PIL.__version__}))
print(json.dumps({"logits_head": logits[:5].tolist(), "generated": generated.tolist(), "keys": [k for k in model.state_dict().keys() if ".layers.1" not in k and "encoder.layers.1" not in k]}))
