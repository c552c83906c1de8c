#!/usr/bin/python3
"""mdlm_ckpt_to_hf.py -- a PyTorch Lightning checkpoint of MDLM (or of the
soft-masking paper's code, which trains MDLM's DiT) -> a Hugging Face
layout folder that `smdiff convert` turns into an mdlm GGUF file.

    scripts/mdlm_ckpt_to_hf.py CKPT OUT_DIR [--n-heads 12] [--length 1024]
        [--time-conditioning] [--no-ema] [--tokenizer DIR]
        [--sm-scale KEY --sm-steepness KEY --sm-centre KEY --sm-temperature KEY]
    smdiff convert OUT_DIR model.gguf

What it reads (docs/MODELS.md):
  * the inference weights: the EMA copy, checkpoint["ema"]["shadow_params"],
    an unnamed list of tensors in the order of the backbone's parameters
    (its state dict's backbone.* entries that are parameters, i.e. without
    the rotary buffer). Each is matched to the state dict entry at the same
    place; a count or shape that disagrees is refused. --no-ema takes the
    plain state dict instead.
  * the shape: hidden size, conditioning width, blocks and vocabulary from
    the tensors; heads, length and time conditioning are not in the
    tensors, so they come from the options (defaults: MDLM's 169M model).
  * the soft-masking transparency head's four scalars, when the state dict
    has them: the raw (unconstrained) values named by --sm-* (default: the
    first entry whose name ends in omega_s, omega_a, omega_b, and tau or
    temperature), mapped as smdiff's trainer does: scale = sigmoid(raw_s),
    steepness = softplus(raw_a), centre = -softplus(raw_b); the temperature
    is written as stored. They go into config.json's "smdiff_softmask",
    which the converter writes as smdiff.softmask.* keys.
  * --tokenizer DIR copies DIR's tokenizer files (vocab.json, merges.txt,
    added_tokens.json, tokenizer_config.json, special_tokens_map.json,
    tokenizer.json, whichever exist) into OUT_DIR: MDLM's models use GPT-2's
    tokenizer with its mask token appended (id 50257).

A .ckpt is a pickle: load only files you trust. The loader below resolves
only torch's own classes and the builtins a checkpoint's bookkeeping uses;
anything else (Lightning, OmegaConf objects in hyper_parameters) becomes an
inert placeholder, so no code from the file runs and neither package is
needed.

Needs PyTorch (Debian: python3-torch). Writes model.safetensors without the
safetensors package (the format is a JSON header and raw little-endian data).
"""
import argparse
import json
import math
import os
import pickle
import shutil
import struct
import sys

import torch


class _Inert:
    """Stands in for any class the checkpoint names that is not torch's."""

    def __init__(self, *a, **k):
        pass

    def __setstate__(self, state):
        self.state = state

    def __call__(self, *a, **k):
        return _Inert()


_BaseUnpickler = pickle.Unpickler


class _Unpickler(_BaseUnpickler):
    SAFE_BUILTINS = {"dict", "list", "tuple", "set", "frozenset", "int", "float", "str", "bytes", "bool",
                     "complex", "slice", "range", "bytearray"}

    def find_class(self, module, name):
        if module == "torch" or module.startswith("torch."):
            return super().find_class(module, name)
        if module in ("collections",) and name == "OrderedDict":
            return super().find_class(module, name)
        if module == "builtins" and name in self.SAFE_BUILTINS:
            return super().find_class(module, name)
        if module in ("_codecs",) and name == "encode":
            return super().find_class(module, name)
        return _Inert


def load_ckpt(path):
    # torch.load builds its unpickler on pickle.Unpickler (some releases
    # ignore a pickle_module argument), so the restricted one stands in for
    # it while the file loads.
    pickle.Unpickler = _Unpickler
    try:
        with open(path, "rb") as f:
            return torch.load(f, map_location="cpu", pickle_module=pickle)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as e:
        fail(f"{path}: cannot read it as a PyTorch checkpoint: {e}")
    finally:
        pickle.Unpickler = _BaseUnpickler


def fail(msg):
    print("mdlm_ckpt_to_hf: " + msg, file=sys.stderr)
    sys.exit(1)


BUFFERS = ("rotary_emb.inv_freq",)


def backbone_params(sd):
    """The state dict's backbone parameters in order (buffers left out)."""
    out = [(k, v) for k, v in sd.items() if k.startswith("backbone.") and torch.is_tensor(v)
           and not k.endswith(BUFFERS)]
    if not out:
        fail("the checkpoint's state_dict has no backbone.* tensors (not an MDLM checkpoint?)")
    return out


def ema_weights(ckpt, named):
    ema = ckpt.get("ema")
    if not isinstance(ema, dict) or not isinstance(ema.get("shadow_params"), (list, tuple)):
        fail("the checkpoint has no ema.shadow_params (use --no-ema for the plain weights)")
    shadow = list(ema["shadow_params"])
    # MDLM's EMA covers the backbone's parameters, then the noise schedule's
    # (none for the log-linear schedule): the backbone comes first.
    if len(shadow) < len(named):
        fail(f"ema.shadow_params holds {len(shadow)} tensors, the backbone has {len(named)} parameters")
    out = []
    for i, (k, v) in enumerate(named):
        s = shadow[i]
        if not torch.is_tensor(s) or tuple(s.shape) != tuple(v.shape):
            got = tuple(s.shape) if torch.is_tensor(s) else type(s).__name__
            fail(f"ema.shadow_params[{i}] is {got}, but parameter {k} is {tuple(v.shape)}")
        out.append((k, s))
    for j in range(len(named), len(shadow)):
        if torch.is_tensor(shadow[j]) and shadow[j].numel() > 16:
            fail(f"ema.shadow_params has {len(shadow) - len(named)} tensors beyond the backbone's; "
                 "is this MDLM's layout?")
    return out


def find_scalar(sd, explicit, suffixes):
    if explicit:
        if explicit not in sd:
            fail(f"state_dict has no entry {explicit}")
        key = explicit
    else:
        key = next((k for k in sd if torch.is_tensor(sd[k]) and any(k.endswith(s) for s in suffixes)), None)
        if key is None:
            return None
    v = sd[key]
    if not torch.is_tensor(v) or v.numel() != 1:
        fail(f"state_dict entry {key} is not a scalar")
    return float(v.reshape(()).item())


def softplus(x):
    return math.log1p(math.exp(-abs(x))) + max(x, 0.0)


def write_safetensors(path, named):
    header, blobs, off = {}, [], 0
    for k, v in named:
        t = v.detach().to(torch.float32).contiguous().cpu()
        b = t.numpy().tobytes()
        header[k] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((-len(h)) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ckpt")
    ap.add_argument("out_dir")
    ap.add_argument("--n-heads", type=int, default=12)
    ap.add_argument("--length", type=int, default=1024)
    ap.add_argument("--time-conditioning", action="store_true")
    ap.add_argument("--no-ema", action="store_true")
    ap.add_argument("--tokenizer")
    for n in ("scale", "steepness", "centre", "temperature"):
        ap.add_argument(f"--sm-{n}", metavar="KEY")
    a = ap.parse_args()

    ckpt = load_ckpt(a.ckpt)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        fail("not a Lightning checkpoint (no state_dict)")
    sd = ckpt["state_dict"]
    named = backbone_params(sd)
    weights = named if a.no_ema else ema_weights(ckpt, named)
    shapes = dict(named)
    emb = shapes.get("backbone.vocab_embed.embedding")
    fc1 = shapes.get("backbone.sigma_map.mlp.0.weight")
    if emb is None or fc1 is None or emb.dim() != 2 or fc1.dim() != 2:
        fail("backbone.vocab_embed.embedding or backbone.sigma_map.mlp.0.weight missing (not MDLM's DiT?)")
    vocab, hidden = emb.shape
    blocks = len({k.split(".")[2] for k in shapes if k.startswith("backbone.blocks.")})
    if a.n_heads <= 0 or hidden % a.n_heads or (hidden // a.n_heads) % 2:
        fail(f"--n-heads {a.n_heads} does not divide the hidden size {hidden} into even heads")
    cfg = {"architectures": ["MDLM"], "model_type": "mdlm", "vocab_size": int(vocab),
           "model_length": a.length, "hidden_dim": int(hidden), "cond_dim": int(fc1.shape[0]),
           "n_blocks": blocks, "n_heads": a.n_heads, "time_conditioning": bool(a.time_conditioning)}
    raw = {n: find_scalar(sd, getattr(a, f"sm_{n}"), suf) for n, suf in (
        ("scale", ("omega_s",)), ("steepness", ("omega_a",)), ("centre", ("omega_b",)),
        ("temperature", ("tau", "temperature")))}
    if raw["scale"] is not None and raw["steepness"] is not None and raw["centre"] is not None:
        sm = {"scale": 1.0 / (1.0 + math.exp(-raw["scale"])), "steepness": softplus(raw["steepness"]),
              "centre": -softplus(raw["centre"])}
        if raw["temperature"] is not None:
            sm["temperature"] = raw["temperature"]
        cfg["smdiff_softmask"] = sm
    elif any(v is not None for v in raw.values()):
        fail("the state_dict has some soft-masking scalars but not omega_s, omega_a and omega_b; "
             "name them with --sm-scale/--sm-steepness/--sm-centre")

    os.makedirs(a.out_dir, exist_ok=True)
    write_safetensors(os.path.join(a.out_dir, "model.safetensors"), weights)
    with open(os.path.join(a.out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    if a.tokenizer:
        for n in ("vocab.json", "merges.txt", "added_tokens.json", "tokenizer_config.json",
                  "special_tokens_map.json", "tokenizer.json"):
            p = os.path.join(a.tokenizer, n)
            if os.path.exists(p):
                shutil.copyfile(p, os.path.join(a.out_dir, n))
    print(f"{a.out_dir}: {len(weights)} tensors ({'plain' if a.no_ema else 'EMA'} weights), "
          f"{blocks} blocks, hidden {hidden}, vocab {vocab}"
          + (", soft-masking scalars" if "smdiff_softmask" in cfg else ""), file=sys.stderr)


if __name__ == "__main__":
    main()
