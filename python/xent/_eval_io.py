"""Array files read chunk by chunk for ``xent eval``: ``.npy`` (memory-mapped), ``.npz`` (each
member read sequentially) and, with pyarrow installed, Parquet and Arrow IPC / Feather.

Every source knows its row count and row shape before reading, and yields blocks of rows in
order, so memory stays bounded by the chunk size whatever the file size. Problems are raised
as :class:`InputError` with a one-line message naming the file.
"""
from __future__ import annotations

import mmap
import os
import zipfile
from collections.abc import Iterator

import numpy as np


class InputError(Exception):
    """A file that cannot be read as the expected array (the CLI prints it on one line)."""


PARQUET = (".parquet", ".pq")
ARROW = (".arrow", ".feather", ".ipc")


def _read_npy_header(f, name: str):
    try:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(f)
    except Exception as e:  # NumPy raises ValueError for a bad magic string or header
        raise InputError(f"{name}: not a valid .npy array ({e})") from None
    if dtype.hasobject:
        raise InputError(f"{name}: holds Python objects, not numbers")
    return tuple(shape), bool(fortran), dtype


class Source:
    """Rows of one array: ``n_rows``, ``row_shape``, ``dtype``, ``name``; ``blocks(rows)``."""

    name: str
    n_rows: int
    row_shape: tuple
    dtype: np.dtype

    def blocks(self, rows: int) -> Iterator[np.ndarray]:
        raise NotImplementedError


class NpySource(Source):
    """A ``.npy`` file, memory-mapped; the pages of each block are released from this process
    once the next block is requested (``madvise(MADV_DONTNEED)``: they stay in the page cache),
    so the resident memory stays about one block however large the file; the next block is
    requested from the disk while the current one is evaluated (``MADV_WILLNEED``)."""

    def __init__(self, path: str, name: str):
        self.name = name
        with open(path, "rb") as f:
            shape, fortran, self.dtype = _read_npy_header(f, name)
            offset = f.tell()
            if len(shape) == 0:
                raise InputError(f"{name}: holds a scalar, expected an array of rows")
            self.n_rows, self.row_shape = shape[0], shape[1:]
            nbytes = int(np.prod(shape, dtype=np.int64)) * self.dtype.itemsize
            if os.fstat(f.fileno()).st_size < offset + nbytes:
                raise InputError(f"{name}: file is truncated (shape {shape} needs {nbytes} bytes of data)")
            if fortran and len(shape) > 1:
                raise InputError(f"{name}: Fortran-ordered arrays cannot be streamed by rows; save it C-ordered")
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if nbytes else None
        self._offset, self._nbytes = offset, nbytes

    def blocks(self, rows):
        if self._map is None:
            yield np.empty((self.n_rows, *self.row_shape), self.dtype)
            return
        mm = self._map
        if hasattr(mm, "madvise") and hasattr(mmap, "MADV_SEQUENTIAL"):
            mm.madvise(mmap.MADV_SEQUENTIAL)
        row_bytes = self._nbytes // max(1, self.n_rows)
        ahead = hasattr(mm, "madvise") and hasattr(mmap, "MADV_WILLNEED")
        for i in range(0, self.n_rows, rows):
            n = min(rows, self.n_rows - i)
            start = self._offset + i * row_bytes
            nxt = start + n * row_bytes
            if ahead and nxt < len(mm):  # the kernel reads the next block while this one is evaluated
                lo = nxt - nxt % mmap.PAGESIZE
                mm.madvise(mmap.MADV_WILLNEED, lo, min(len(mm), nxt + n * row_bytes) - lo)
            buf = np.frombuffer(mm, dtype=self.dtype, count=n * (row_bytes // self.dtype.itemsize), offset=start)
            yield buf.reshape((n, *self.row_shape))
            del buf
            if hasattr(mm, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
                lo = start - start % mmap.PAGESIZE
                mm.madvise(mmap.MADV_DONTNEED, lo, start + n * row_bytes - lo)


class NpzSource(Source):
    """One member of a ``.npz`` archive (compressed or not), read sequentially block by block."""

    def __init__(self, path: str, key: str, name: str):
        self.name, self._path = f"{name}[{key}]", path
        try:
            zf = zipfile.ZipFile(path)
        except zipfile.BadZipFile:
            raise InputError(f"{name}: not a valid .npz archive") from None
        with zf:
            names = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
            if key not in names:
                raise InputError(f"{name}: has no array {key!r} (it has: {', '.join(names) or 'none'})")
            self._member = key + ".npy"
            with zf.open(self._member) as f:
                shape, self._fortran, self.dtype = _read_npy_header(f, self.name)
        if len(shape) == 0:
            raise InputError(f"{self.name}: holds a scalar, expected an array of rows")
        self.n_rows, self.row_shape = shape[0], shape[1:]

    def blocks(self, rows):
        with zipfile.ZipFile(self._path) as zf, zf.open(self._member) as f:
            _read_npy_header(f, self.name)
            if self._fortran and self.row_shape:  # rows are not contiguous: read it whole
                yield np.load(self._path)[self._member[:-4]]
                return
            row_items = int(np.prod(self.row_shape, dtype=np.int64))
            for i in range(0, max(self.n_rows, 1), rows):
                n = min(rows, self.n_rows - i)
                data = f.read(n * row_items * self.dtype.itemsize)
                if len(data) != n * row_items * self.dtype.itemsize:
                    raise InputError(f"{self.name}: archive member is truncated")
                yield np.frombuffer(data, dtype=self.dtype).reshape((n, *self.row_shape))


def _arrow_column(col, name: str, n_cols):
    """An Arrow column (scalars, or lists of equal length) as a NumPy array of rows."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if col.null_count:
        i = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
        raise InputError(f"{name}: row {i} is null")
    t = col.type
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False)
        want = n_cols if n_cols is not None else (int(lengths[0]) if len(lengths) else 0)
        bad = np.flatnonzero(lengths != want)
        if bad.size:
            raise InputError(f"{name}: row {int(bad[0])} has {int(lengths[bad[0]])} values, expected {want}")
        flat = col.flatten()
        if flat.null_count:
            raise InputError(f"{name}: holds null values inside its lists")
        return flat.to_numpy(zero_copy_only=False).reshape(len(col), want)
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
        return col.to_numpy(zero_copy_only=False)
    raise InputError(f"{name}: column type {t} is neither numbers nor lists of numbers")


class ArrowSource(Source):
    """A column of a Parquet or Arrow IPC (Feather v2) file: integer labels, or one list of
    values per row (logits, probabilities, one-hot labels). Needs pyarrow."""

    def __init__(self, path: str, key: str, name: str):
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise InputError(f"{name}: reading Parquet/Arrow files needs pyarrow (pip install 'xent[eval]')") from None
        self.name, self._path, self._key = f"{name}[{key}]", path, key
        self._parquet = path.lower().endswith(PARQUET)
        try:
            if self._parquet:
                self._file = pq.ParquetFile(path)
                schema, self.n_rows = self._file.schema_arrow, self._file.metadata.num_rows
            else:
                self._file = pa.ipc.open_file(pa.memory_map(path))
                schema = self._file.schema
                self.n_rows = sum(self._file.get_batch(i).num_rows for i in range(self._file.num_record_batches))
        except (pa.ArrowException, OSError) as e:
            raise InputError(f"{name}: cannot be read as {'Parquet' if self._parquet else 'Arrow IPC'} ({e})") from None
        if key not in schema.names:
            raise InputError(f"{name}: has no column {key!r} (it has: {', '.join(schema.names)})")
        self._n_cols = None
        first = next(self._raw_blocks(1), None)
        self.dtype = first.dtype if first is not None else np.dtype(schema.field(key).type.to_pandas_dtype())
        self.row_shape = first.shape[1:] if first is not None else ()
        self._n_cols = self.row_shape[0] if self.row_shape else None

    def _raw_blocks(self, rows):
        if self._parquet:
            batches = self._file.iter_batches(batch_size=rows, columns=[self._key])
        else:
            batches = (self._file.get_batch(i) for i in range(self._file.num_record_batches))
        for b in batches:
            yield _arrow_column(b.column(self._key), self.name, self._n_cols)

    def blocks(self, rows):
        return self._raw_blocks(rows)


def open_source(path: str, key: str) -> Source:
    """The array ``key`` of ``path`` (the key is ignored for ``.npy``), by file extension."""
    name = os.path.basename(path)
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory, not a file")
    low = path.lower()
    try:
        if low.endswith(".npy"):
            return NpySource(path, name)
        if low.endswith(".npz"):
            return NpzSource(path, key, name)
        if low.endswith(PARQUET + ARROW):
            return ArrowSource(path, key, name)
    except OSError as e:
        raise InputError(f"{path}: {e.strerror or e}") from None
    raise InputError(f"{name}: unknown file type (expected .npy, .npz, .parquet or .arrow/.feather)")


def rechunk(blocks: Iterator[np.ndarray], rows: int) -> Iterator[np.ndarray]:
    """Blocks of exactly ``rows`` rows (the last one shorter), from blocks of any size;
    blocks that already have the right size pass through without a copy."""
    pending: list[np.ndarray] = []
    have = 0
    for b in blocks:
        if not pending and len(b) == rows:
            yield b
            continue
        pending.append(b)
        have += len(b)
        while have >= rows:
            cat = np.concatenate(pending) if len(pending) > 1 else pending[0]
            yield cat[:rows]
            rest = cat[rows:]
            pending, have = ([rest] if len(rest) else []), len(rest)
    if have:
        yield np.concatenate(pending) if len(pending) > 1 else pending[0]
