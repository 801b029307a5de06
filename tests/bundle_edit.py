"""Taking a saved model bundle (ZIP of meta.json + .npy members) apart and putting an edited one
back together, for the hostile-file tests of every loader."""
import io
import zipfile

import numpy as np


def members(raw) -> dict:
    """``{name: bytes}`` of a bundle given as bytes or a path."""
    with zipfile.ZipFile(io.BytesIO(raw) if isinstance(raw, bytes) else raw) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def rezip(parts: dict, compression=zipfile.ZIP_DEFLATED) -> io.BytesIO:
    """A readable in-memory bundle holding ``parts`` in their order."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    out.seek(0)
    return out


def npy(arr) -> bytes:
    """``arr`` as the bytes of a .npy member (never pickled)."""
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def load_npy(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)
