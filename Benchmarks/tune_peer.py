"""Peer for `selfspec tune bench`: PyTorch + PEFT LoRA training steps on CPU (2 threads), the same
model loaded from the same GGUF (dequantized to float32), LoRA r=8 alpha=16 on q,k,v,o,gate,up,down,
a batch of B x T tokens of the same PubMed text, AdamW. Prints one JSON line.
Usage: python tune_peer.py GGUF TEXT [B T STEPS]"""
import json, os, resource, sys, time
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from peft import LoraConfig, get_peft_model

gguf, text_path = sys.argv[1], sys.argv[2]
B, T, STEPS = (int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])) if len(sys.argv) > 5 else (4, 256, 3)
torch.set_num_threads(2); torch.manual_seed(0)
d, f = os.path.dirname(os.path.abspath(gguf)), os.path.basename(gguf)
tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
base = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, bias="none",
    target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
ids = tok.encode(open(text_path, encoding="utf-8").read(), add_special_tokens=False)[: B * (T + 1)]
assert len(ids) == B * (T + 1), f"{text_path}: need {B * (T + 1)} tokens"
rows = torch.tensor(ids).view(B, T + 1)
x, y = rows[:, :-1].contiguous(), rows[:, 1:].contiguous()
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
model.train()
losses, measured = [], 0.0
for i in range(1 + STEPS):
    t0 = time.perf_counter()
    logits = model(input_ids=x).logits
    loss = torch.nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))
    loss.backward(); opt.step(); opt.zero_grad()
    losses.append(round(float(loss.detach()), 6))
    if i >= 1: measured += time.perf_counter() - t0
per = measured / STEPS
print(json.dumps({"engine": f"PyTorch {torch.__version__} + PEFT", "batch": B, "time": T, "steps": STEPS,
                  "secondsPerStep": round(per, 3), "tokensPerSecond": round(B * T / per, 1),
                  "peakRSSMB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024), "losses": losses}))
