#!/usr/bin/python3
"""Tiny Lightning-style MDLM checkpoints for scripts/mdlm_ckpt_to_hf.py
(run by tests/test_mdlm.c into a scratch folder; needs PyTorch).

  OUT/tiny.ckpt  state_dict: backbone.* of tests/data/hf_tiny_mdlm in
                 registration order (rotary buffer included) with every
                 parameter PLUS 0.5 -- the training copy -- and the
                 soft-masking head's raw scalars under softmask.*;
                 ema.shadow_params: the true weights (those of the
                 reference logits) as MDLM's EMA stores them, an unnamed
                 list in parameter order; hyper_parameters: an object of a
                 class the importer must not import (it stays inert).
  OUT/bad.ckpt   the same with one EMA tensor of the wrong shape.

Usage: mdlm_ckpt_fixture.py OUT_DIR
"""
import json
import os
import struct
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
RAW = {"omega_s": 0.4, "omega_a": 1.5, "omega_b": -0.3, "tau": 1.0}


class OpaqueConfig:
    """A stand-in for Lightning/OmegaConf objects in hyper_parameters."""

    def __init__(self):
        self.model = {"n_heads": 4}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = []
    for k, v in sorted(((k, v) for k, v in header.items() if k != "__metadata__"),
                       key=lambda kv: kv[1]["data_offsets"][0]):
        a, b = v["data_offsets"]
        t = torch.frombuffer(bytearray(data[a:b]), dtype=torch.float32).reshape(v["shape"])
        out.append((k, t.clone()))
    return out


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    named = read_safetensors(os.path.join(HERE, "..", "data", "hf_tiny_mdlm", "model.safetensors"))
    sd, shadow = {}, []
    for k, v in named:
        if k.endswith("rotary_emb.inv_freq"):
            sd[k] = v
            continue
        sd[k] = v + 0.5
        shadow.append(v)
    for k, v in RAW.items():
        sd["softmask." + k] = torch.tensor(v)
    ckpt = {"epoch": 3, "global_step": 1000, "state_dict": sd,
            "ema": {"decay": 0.9999, "num_updates": 1000, "shadow_params": shadow},
            "hyper_parameters": {"config": OpaqueConfig()}}
    torch.save(ckpt, os.path.join(out, "tiny.ckpt"))
    bad = dict(ckpt, ema=dict(ckpt["ema"], shadow_params=shadow[:3] + [shadow[3][:-1]] + shadow[4:]))
    torch.save(bad, os.path.join(out, "bad.ckpt"))


if __name__ == "__main__":
    main()
