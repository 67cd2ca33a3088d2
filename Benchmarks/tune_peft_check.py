"""Loads a PEFT adapter exported by `selfspec tune` onto the Hugging Face model (from the same GGUF)
and prints the loss of the golden example, to compare with the golden AdamW trajectory.
Usage: python tune_peft_check.py GGUF ADAPTER_DIR GOLDEN_JSON STEP"""
import json, os, sys
import torch
from transformers import AutoModelForCausalLM
from peft import PeftModel

gguf, adapter, golden_path, step = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
torch.set_num_threads(2)
g = json.load(open(golden_path))
d, f = os.path.dirname(os.path.abspath(gguf)), os.path.basename(gguf)
base = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
model = PeftModel.from_pretrained(base, adapter).eval()
with torch.no_grad():
    loss = float(model(input_ids=torch.tensor([g["ids"]]), labels=torch.tensor([g["labels"]])).loss)
want = g["loss_trajectory_5"][step]
print(json.dumps({"peft_loss_with_our_adapter": round(loss, 6), "golden_after_steps": step, "golden": want,
                  "abs_diff": abs(loss - want)}))
sys.exit(0 if abs(loss - want) < 1e-2 else 1)
